import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { EventEnvelope } from './envelope.ts';
import type { DataOf, EventOf } from './event-definition.ts';
import { defineEvent, eventRegistry } from './event-definition.ts';

const ItemAdded = defineEvent({
  type: 'ItemAdded',
  schemas: [
    z.object({ sku: z.string(), qty: z.number() }),
    z.object({ sku: z.string(), quantity: z.number().int() }),
    z.object({ sku: z.string(), quantity: z.number().int(), unitPrice: z.number() }),
  ],
  upcasters: [({ sku, qty }) => ({ sku, quantity: qty }), (v2) => ({ ...v2, unitPrice: 0 })],
});
const OrderPlaced = defineEvent({ type: 'OrderPlaced', schemas: [z.object({ orderId: z.string() })] });

const stored = (type: string, schemaVersion: number, data: unknown, version = 1): EventEnvelope => ({
  id: `00000000-0000-4000-8000-00000000000${version}`,
  stream: 'order-1',
  type,
  schemaVersion,
  data,
  metadata: {},
  version,
  position: version,
  recordedAt: '2026-11-26T00:00:00.000Z',
});

describe('defineEvent', () => {
  it("infers data from the current version's zod schema", () => {
    expectTypeOf<DataOf<typeof ItemAdded>>().toEqualTypeOf<{
      sku: string;
      quantity: number;
      unitPrice: number;
    }>();
    expectTypeOf(ItemAdded.type).toEqualTypeOf<'ItemAdded'>();
    type Ev = EventOf<[typeof ItemAdded, typeof OrderPlaced]>;
    expectTypeOf<Extract<Ev, { type: 'OrderPlaced' }>['data']>().toEqualTypeOf<{ orderId: string }>();
    expect(ItemAdded.schemaVersion).toBe(3);
  });

  it('types each upcaster from one version to the next', () => {
    defineEvent({
      type: 'Typed',
      schemas: [z.object({ a: z.string() }), z.object({ b: z.number() })],
      // @ts-expect-error the upcaster must produce version 2's shape
      upcasters: [(v1) => ({ a: v1.a })],
    });
  });

  it('refuses a missing upcaster step at definition time', () => {
    const define = () =>
      defineEvent({
        type: 'Gap',
        schemas: [z.object({}), z.object({}), z.object({})],
        upcasters: [(d: object) => d] as never,
      });
    expect(define).toThrowError(/no upcaster from version 2 to 3/);
    try {
      define();
    } catch (e) {
      expect((e as { code: string }).code).toBe('Definition');
    }
  });

  it('refuses reserved or malformed type names', () => {
    expect(() => defineEvent({ type: '$system', schemas: [z.object({})] })).toThrowError(/event type/);
  });

  it('validates data of the version it is written at', () => {
    expect(ItemAdded.parse({ sku: 'a', quantity: 2, unitPrice: 3 })).toEqual({
      sku: 'a',
      quantity: 2,
      unitPrice: 3,
    });
    expect(() => ItemAdded.parse({ sku: 'a', quantity: 2.5, unitPrice: 3 })).toThrowError(/data.quantity/);
    expect(() => ItemAdded.parse({ sku: 'a', qty: 1 }, 7)).toThrowError(/no schema version 7/);
  });
});

describe('eventRegistry', () => {
  const registry = eventRegistry([ItemAdded, OrderPlaced]);

  // Golden fixtures: events as stored at every schema version, read as the current shape (I8).
  it.each([
    [1, { sku: 'a', qty: 2 }],
    [2, { sku: 'a', quantity: 2 }],
    [3, { sku: 'a', quantity: 2, unitPrice: 0 }],
  ])('reads ItemAdded stored at version %s as the current shape', (schemaVersion, data) => {
    const original = stored('ItemAdded', schemaVersion, data);
    const frozen = JSON.stringify(original);
    const read = registry.upcast(original);
    expect(read.schemaVersion).toBe(3);
    expect(read.data).toEqual({ sku: 'a', quantity: 2, unitPrice: 0 });
    expect(JSON.stringify(original)).toBe(frozen);
  });

  it('passes unknown types through and validates known ones with a field-naming error', () => {
    const other = stored('Unknown', 4, { x: 1 });
    expect(registry.upcast(other)).toBe(other);
    expect(registry.validate({ type: 'OrderPlaced', data: { orderId: 'o-1' } })).toEqual({
      data: { orderId: 'o-1' },
      schemaVersion: 1,
    });
    expect(() => registry.validate({ type: 'OrderPlaced', data: { orderId: 5 } })).toThrowError(
      /data.orderId/,
    );
    expect(() => registry.validate({ type: 'Nope', data: {} })).toThrowError(/unknown event type 'Nope'/);
  });

  it('refuses a type defined twice', () => {
    expect(() => eventRegistry([OrderPlaced, OrderPlaced])).toThrowError(/defined twice/);
  });
});
