import type { EventEnvelope } from '@edgelog/core';
import { defineProjection } from '@edgelog/core';
import type { BoardEvent } from './events.ts';
import type { OrderStatus } from './order.ts';
import { orderTotal } from './order.ts';

/** Projections see upcast envelopes; this narrows one to the demo's event union. */
const asBoard = (e: EventEnvelope) => e as unknown as BoardEvent;

export interface StockRow {
  sku: string;
  name: string;
  priceCents: number;
  received: number;
  reserved: number;
  available: number;
}

/** Stock per product: what the board shows next to each product. */
export const stock = defineProjection<StockRow>({
  name: 'stock',
  version: 1,
  types: ['ProductListed', 'StockReceived', 'StockReserved', 'StockReleased'],
  key: (e) => (asBoard(e).data as { sku: string }).sku,
  initialState: (sku) => ({ sku, name: sku, priceCents: 0, received: 0, reserved: 0, available: 0 }),
  evolve: (row, envelope) => {
    const e = asBoard(envelope);
    switch (e.type) {
      case 'ProductListed':
        return { ...row, name: e.data.name, priceCents: e.data.priceCents };
      case 'StockReceived':
        return {
          ...row,
          received: row.received + e.data.quantity,
          available: row.available + e.data.quantity,
        };
      case 'StockReserved':
        return {
          ...row,
          reserved: row.reserved + e.data.quantity,
          available: row.available - e.data.quantity,
        };
      case 'StockReleased':
        return {
          ...row,
          reserved: row.reserved - e.data.quantity,
          available: row.available + e.data.quantity,
        };
      default:
        return row;
    }
  },
});

export interface OrderRow {
  orderId: string;
  customer: string;
  openedBy: string;
  status: OrderStatus;
  lines: Record<string, { quantity: number; unitPriceCents: number }>;
  totalCents: number;
  /** Stream version the row reflects. */
  version: number;
}

const ORDER_PREFIX = 'order-';

/** One row per order, for the board's columns (open, placed, cancelled). */
export const orders = defineProjection<OrderRow>({
  name: 'orders',
  version: 1,
  types: ['OrderOpened', 'LineAdded', 'LineRemoved', 'OrderPlaced', 'OrderCancelled'],
  key: (e) => (e.stream.startsWith(ORDER_PREFIX) ? e.stream.slice(ORDER_PREFIX.length) : null),
  initialState: (orderId) => ({
    orderId,
    customer: '',
    openedBy: '',
    status: 'none',
    lines: {},
    totalCents: 0,
    version: 0,
  }),
  evolve: (row, envelope) => {
    const e = asBoard(envelope);
    const next = { ...row, version: envelope.version };
    switch (e.type) {
      case 'OrderOpened':
        return { ...next, status: 'open', customer: e.data.customer, openedBy: e.data.openedBy };
      case 'LineAdded': {
        const before = row.lines[e.data.sku]?.quantity ?? 0;
        const lines = {
          ...row.lines,
          [e.data.sku]: { quantity: before + e.data.quantity, unitPriceCents: e.data.unitPriceCents },
        };
        return { ...next, lines, totalCents: orderTotal(lines) };
      }
      case 'LineRemoved': {
        const { [e.data.sku]: _removed, ...lines } = row.lines;
        return { ...next, lines, totalCents: orderTotal(lines) };
      }
      case 'OrderPlaced':
        return { ...next, status: 'placed' };
      case 'OrderCancelled':
        return { ...next, status: 'cancelled' };
      default:
        return next;
    }
  },
});

export const projections = [stock, orders] as const;
