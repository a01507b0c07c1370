import type { EventEnvelope } from '@edgelog/core';
import { handleCommand, InMemoryEventStore, keysOf, projectEvents } from '@edgelog/core';
import { DeciderSpecification } from '@edgelog/core/testing';
import { describe, expect, it } from 'vitest';
import type { OrderRow, StockRow } from './index.ts';
import { order, orderStream, orders, product, productStream, registry, stock } from './index.ts';

const orderSpec = DeciderSpecification.for(order);
const productSpec = DeciderSpecification.for(product);
const opened = { type: 'OrderOpened', data: { orderId: 'o1', customer: 'Ada', openedBy: 'u1' } } as const;
const tea = { type: 'LineAdded', data: { sku: 'tea', quantity: 2, unitPriceCents: 350 } } as const;

describe('order decider', () => {
  it('opens, adds lines and places with the total', () => {
    orderSpec([opened, tea])
      .when({ type: 'PlaceOrder', at: '2026-11-26T10:00:00Z' })
      .then({ type: 'OrderPlaced', data: { placedAt: '2026-11-26T10:00:00Z', totalCents: 700 } });
  });
  it('cannot place an empty order, or one placed already', () => {
    orderSpec([opened]).when({ type: 'PlaceOrder', at: 'now' }).thenThrows('CommandRejected');
    orderSpec([opened, tea, { type: 'OrderPlaced', data: { placedAt: 'x', totalCents: 700 } }])
      .when({ type: 'PlaceOrder', at: 'now' })
      .thenThrows('CommandRejected');
  });
  it('changes lines only while open', () => {
    orderSpec([opened, tea, { type: 'OrderCancelled', data: { reason: 'r' } }])
      .when({ type: 'AddLine', sku: 'cake', quantity: 1, unitPriceCents: 1 })
      .thenThrows('CommandRejected');
    orderSpec([opened]).when({ type: 'RemoveLine', sku: 'tea' }).thenThrows('CommandRejected');
    orderSpec()
      .when({ type: 'AddLine', sku: 'tea', quantity: 1, unitPriceCents: 1 })
      .thenThrows('CommandRejected');
  });
});

describe('product decider', () => {
  const listed = { type: 'ProductListed', data: { sku: 'tea', name: 'Tea', priceCents: 350 } } as const;
  const received = { type: 'StockReceived', data: { sku: 'tea', quantity: 3 } } as const;
  it('cannot reserve more stock than there is', () => {
    productSpec([listed, received])
      .when({ type: 'ReserveStock', sku: 'tea', orderId: 'o1', quantity: 4 })
      .thenThrows((e) => (e as { code: string; message: string }).message.includes('only 3 left'));
    productSpec([listed, received])
      .when({ type: 'ReserveStock', sku: 'tea', orderId: 'o1', quantity: 3 })
      .then({ type: 'StockReserved', data: { sku: 'tea', orderId: 'o1', quantity: 3 } });
  });
  it('reserves once per order and releases what was reserved', () => {
    const reserved = { type: 'StockReserved', data: { sku: 'tea', orderId: 'o1', quantity: 2 } } as const;
    productSpec([listed, received, reserved])
      .when({ type: 'ReserveStock', sku: 'tea', orderId: 'o1', quantity: 2 })
      .then([]);
    productSpec([listed, received, reserved])
      .when({ type: 'ReleaseStock', sku: 'tea', orderId: 'o1' })
      .then({ type: 'StockReleased', data: { sku: 'tea', orderId: 'o1', quantity: 2 } });
    productSpec([listed]).when({ type: 'ReleaseStock', sku: 'tea', orderId: 'o9' }).then([]);
  });
  it('knows no unlisted product', () => {
    productSpec().when({ type: 'ReceiveStock', sku: 'tea', quantity: 1 }).thenThrows('CommandRejected');
  });
});

describe('the board over a store', () => {
  it('two sellers race for the last units: one reservation is refused, the projections agree', async () => {
    const store = new InMemoryEventStore();
    const opts = { registry };
    await handleCommand(
      store,
      product,
      productStream('tea'),
      { type: 'ListProduct', sku: 'tea', name: 'Tea', priceCents: 350 },
      opts,
    );
    await handleCommand(
      store,
      product,
      productStream('tea'),
      { type: 'ReceiveStock', sku: 'tea', quantity: 3 },
      opts,
    );
    for (const id of ['o1', 'o2']) {
      await handleCommand(
        store,
        order,
        orderStream(id),
        { type: 'OpenOrder', orderId: id, customer: id, by: 'u' },
        opts,
      );
      await handleCommand(
        store,
        order,
        orderStream(id),
        { type: 'AddLine', sku: 'tea', quantity: 2, unitPriceCents: 350 },
        opts,
      );
    }
    const results = await Promise.allSettled(
      ['o1', 'o2'].map((id) =>
        handleCommand(
          store,
          product,
          productStream('tea'),
          { type: 'ReserveStock', sku: 'tea', orderId: id, quantity: 2 },
          opts,
        ),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);

    const all = (await store.readAll()).events.map((e) => registry.upcast(e));
    const fold = <S>(def: typeof stock | typeof orders, events: EventEnvelope[]) =>
      projectEvents(def as never, events, new Map()) as Map<string, S | null>;
    const stockRows = fold<StockRow>(stock, all);
    expect(stockRows.get('tea')).toMatchObject({ received: 3, reserved: 2, available: 1 });
    const orderRows = fold<OrderRow>(orders, all);
    expect(orderRows.get('o1')).toMatchObject({ status: 'open', totalCents: 700 });
    expect(keysOf(orders, all).sort()).toEqual(['o1', 'o2']);
  });

  it('reads a line stored at schema version 1 as the current shape', () => {
    const v1: EventEnvelope = {
      id: '00000000-0000-4000-8000-000000000001',
      stream: 'order-o1',
      type: 'LineAdded',
      schemaVersion: 1,
      data: { sku: 'tea', qty: 2 },
      metadata: {},
      version: 2,
    };
    expect(registry.upcast(v1).data).toEqual({ sku: 'tea', quantity: 2, unitPriceCents: 0 });
  });
});
