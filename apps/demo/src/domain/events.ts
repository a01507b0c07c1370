import type { EventOf } from '@edgelog/core';
import { defineEvent, eventRegistry } from '@edgelog/core';
import { z } from 'zod';

const Sku = z.string().regex(/^[a-z0-9-]{1,40}$/, 'skus are 1-40 of a-z, 0-9 and -');
const Quantity = z.number().int().min(1).max(10_000);
const Cents = z.number().int().min(0).max(100_000_000);

// ---- products (stream `product-<sku>`) ---------------------------------------------------
export const ProductListed = defineEvent({
  type: 'ProductListed',
  schemas: [z.object({ sku: Sku, name: z.string().min(1).max(80), priceCents: Cents })],
});
export const StockReceived = defineEvent({
  type: 'StockReceived',
  schemas: [z.object({ sku: Sku, quantity: Quantity })],
});
export const StockReserved = defineEvent({
  type: 'StockReserved',
  schemas: [z.object({ sku: Sku, orderId: z.string(), quantity: Quantity })],
});
export const StockReleased = defineEvent({
  type: 'StockReleased',
  schemas: [z.object({ sku: Sku, orderId: z.string(), quantity: Quantity })],
});

// ---- orders (stream `order-<id>`) --------------------------------------------------------
export const OrderOpened = defineEvent({
  type: 'OrderOpened',
  schemas: [
    z.object({ orderId: z.string(), customer: z.string().min(1).max(80), openedBy: z.string().max(40) }),
  ],
});
/**
 * Version 1 stored a bare `qty`; version 2 names it `quantity` and carries the unit price
 * at the time of adding, so an old order still totals (at 0) after the change.
 */
export const LineAdded = defineEvent({
  type: 'LineAdded',
  schemas: [
    z.object({ sku: Sku, qty: Quantity }),
    z.object({ sku: Sku, quantity: Quantity, unitPriceCents: Cents }),
  ],
  upcasters: [({ sku, qty }) => ({ sku, quantity: qty, unitPriceCents: 0 })],
});
export const LineRemoved = defineEvent({ type: 'LineRemoved', schemas: [z.object({ sku: Sku })] });
export const OrderPlaced = defineEvent({
  type: 'OrderPlaced',
  schemas: [z.object({ placedAt: z.string(), totalCents: Cents })],
});
export const OrderCancelled = defineEvent({
  type: 'OrderCancelled',
  schemas: [z.object({ reason: z.string().max(200) })],
});

export const definitions = [
  ProductListed,
  StockReceived,
  StockReserved,
  StockReleased,
  OrderOpened,
  LineAdded,
  LineRemoved,
  OrderPlaced,
  OrderCancelled,
] as const;
export const registry = eventRegistry(definitions);

/** Every demo event as read back (current shapes), discriminated by `type`. */
export type BoardEvent = EventOf<typeof definitions>;
type Pick<T extends BoardEvent['type']> = Extract<BoardEvent, { type: T }>;
export type ProductEvent = Pick<'ProductListed' | 'StockReceived' | 'StockReserved' | 'StockReleased'>;
export type OrderEvent = Pick<'OrderOpened' | 'LineAdded' | 'LineRemoved' | 'OrderPlaced' | 'OrderCancelled'>;
/** What a decider emits: the type and the data of one of its events. */
export type Emitted<E extends BoardEvent> = E extends BoardEvent
  ? { type: E['type']; data: E['data'] }
  : never;

export { orderStream, productStream } from './streams.ts';
