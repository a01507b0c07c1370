import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { aggregateStream } from './decider.ts';
import type { EventEnvelope } from './envelope.ts';
import { defineEvent, eventRegistry } from './event-definition.ts';
import { InMemoryEventStore } from './in-memory-event-store.ts';
import { randomId } from './ports.ts';
import { defineProjection, keysOfBatch, type ParkedEvent, projectBatch } from './projection.ts';
import { isUsableSnapshot, type SnapshotPolicy, shouldSnapshot } from './snapshot.ts';

// I7 for any history: reprocessing is harmless, rebuild equals incremental, snapshot plus
// tail equals full replay. Histories hold poison events (the projection throws) and events
// stored at an old schema version, one of them not upcastable.

const Moved = defineEvent({
  type: 'Moved',
  schemas: [z.object({ n: z.number().int() }), z.object({ delta: z.number().int() })],
  upcasters: [({ n }) => ({ delta: n })],
});
const registry = eventRegistry([Moved]);
type Row = { count: number; sum: number };

const board = defineProjection<Row>({
  name: 'board',
  version: 1,
  types: ['Moved', 'Cleared'],
  key: (e) => [e.stream, 'all'],
  initialState: () => ({ count: 0, sum: 0 }),
  evolve: (row, e) => {
    if (e.type === 'Cleared') return null;
    const { delta } = e.data as { delta: number };
    if (delta === 13) throw new Error('13 is poison');
    return { count: row.count + 1, sum: row.sum + delta };
  },
});

const eventArb = fc.record({
  stream: fc.constantFrom('s-a', 's-b', 's-c'),
  kind: fc.constantFrom('new', 'new', 'new', 'old', 'broken', 'poison', 'clear', 'other'),
  n: fc.integer({ min: -20, max: 20 }),
});
type Raw = { stream: string; kind: string; n: number };

function history(raw: readonly Raw[]): EventEnvelope[] {
  const versions = new Map<string, number>();
  return raw.map((r, i) => {
    const version = (versions.get(r.stream) ?? 0) + 1;
    versions.set(r.stream, version);
    const base = { id: `e-${i}`, stream: r.stream, metadata: {}, version, position: i + 1 };
    switch (r.kind) {
      case 'old':
        return { ...base, type: 'Moved', schemaVersion: 1, data: { n: r.n } };
      case 'broken':
        return { ...base, type: 'Moved', schemaVersion: 1, data: { n: 'not a number' } };
      case 'poison':
        return { ...base, type: 'Moved', schemaVersion: 2, data: { delta: 13 } };
      case 'clear':
        return { ...base, type: 'Cleared', schemaVersion: 1, data: {} };
      case 'other':
        return { ...base, type: 'Other', schemaVersion: 1, data: {} };
      default:
        return { ...base, type: 'Moved', schemaVersion: 2, data: { delta: r.n } };
    }
  });
}

/** A store the way both runners keep one: rows, parked events and checkpoint move together. */
interface Model {
  rows: Map<string, Row>;
  parked: ParkedEvent[];
  checkpoint: number;
}
const empty = (): Model => ({ rows: new Map(), parked: [], checkpoint: 0 });
const upcast = (e: EventEnvelope) => registry.upcast(e);

/** Delivers a page: events at or before the checkpoint are skipped, as redelivery may bring them. */
function deliver(model: Model, page: readonly EventEnvelope[]): Model {
  const fresh = page.filter((e) => (e.position ?? 0) > model.checkpoint);
  const current = new Map<string, Row>();
  for (const k of keysOfBatch(board, fresh, { upcast })) {
    const row = model.rows.get(k);
    if (row) current.set(k, row);
  }
  const out = projectBatch(board, fresh, current, { upcast });
  const rows = new Map(model.rows);
  for (const [k, v] of out.changed) {
    if (v === null) rows.delete(k);
    else rows.set(k, v);
  }
  return {
    rows,
    parked: [...model.parked, ...out.parked],
    checkpoint: Math.max(model.checkpoint, out.through),
  };
}

const cut = (events: EventEnvelope[], cuts: number[]): EventEnvelope[][] => {
  const points = [...new Set(cuts.map((c) => c % (events.length + 1)))].sort((a, b) => a - b);
  const pages: EventEnvelope[][] = [];
  let from = 0;
  for (const p of [...points, events.length]) {
    pages.push(events.slice(from, p));
    from = p;
  }
  return pages;
};

const sorted = (m: Model) => [...m.rows].sort(([a], [b]) => a.localeCompare(b));

describe('projection properties (I7)', () => {
  it('rebuilding from zero equals the model built incrementally, page by page', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 80 }),
        fc.array(fc.nat(80), { maxLength: 10 }),
        (raw, cuts) => {
          const events = history(raw);
          const incremental = cut(events, cuts).reduce(deliver, empty());
          const rebuilt = deliver(empty(), events);
          expect(sorted(incremental)).toEqual(sorted(rebuilt));
          expect(incremental.parked).toEqual(rebuilt.parked);
          expect(incremental.checkpoint).toBe(events.length);
        },
      ),
    );
  });

  it('reprocessing any prefix a second time changes nothing', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 80 }),
        fc.nat(80),
        fc.nat(80),
        fc.array(fc.nat(80), { maxLength: 6 }),
        (raw, a, b, cuts) => {
          const events = history(raw);
          const [from, to] = [a % (events.length + 1), b % (events.length + 1)].sort((x, y) => x - y);
          const once = cut(events, cuts).reduce(deliver, empty());
          // Deliver up to `to`, then a redelivery of [from, to) (a crash after the commit), then the rest.
          let twice = deliver(empty(), events.slice(0, to));
          twice = deliver(twice, events.slice(from, to));
          twice = deliver(twice, events.slice(from));
          expect(sorted(twice)).toEqual(sorted(once));
          expect(twice.parked).toEqual(once.parked);
        },
      ),
    );
  });

  it('parks what does not upcast and what the projection throws on, and goes on', () => {
    const events = history([
      { stream: 's-a', kind: 'old', n: 2 },
      { stream: 's-a', kind: 'broken', n: 0 },
      { stream: 's-b', kind: 'poison', n: 0 },
      { stream: 's-b', kind: 'new', n: 3 },
    ]);
    const model = deliver(empty(), events);
    expect(model.parked.map((p) => [p.position, p.eventId])).toEqual([
      [2, 'e-1'],
      [3, 'e-2'],
    ]);
    expect(model.parked[0]!.error).toMatch(/data\.n/);
    expect(model.parked[1]!.error).toBe('13 is poison');
    expect(sorted(model)).toEqual([
      ['all', { count: 2, sum: 5 }],
      ['s-a', { count: 1, sum: 2 }],
      ['s-b', { count: 1, sum: 3 }],
    ]);
    expect(model.checkpoint).toBe(4);
  });
});

type Counter = { total: number; seen: number };
const counter = {
  initialState: (): Counter => ({ total: 0, seen: 0 }),
  evolve: (s: Counter, e: { data: unknown }): Counter => ({
    total: s.total + (e.data as { delta: number }).delta,
    seen: s.seen + 1,
  }),
};

describe('snapshots (I7)', () => {
  it('a snapshot taken by the policy plus the tail equals a full replay', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ old: fc.boolean(), n: fc.integer({ min: -9, max: 9 }) }), {
          minLength: 1,
          maxLength: 60,
        }),
        fc.integer({ min: 1, max: 20 }),
        fc.nat(60),
        async (raw, every, at) => {
          const store = new InMemoryEventStore();
          const events = raw.map((r) =>
            r.old
              ? { id: randomId(), type: 'Moved', schemaVersion: 1, data: { n: r.n } }
              : { id: randomId(), type: 'Moved', schemaVersion: 2, data: { delta: r.n } },
          );
          const split = at % (events.length + 1);
          if (split > 0) await store.append('acc', events.slice(0, split));
          const policy: SnapshotPolicy = { stateVersion: 1, every };
          const head = await aggregateStream(store, 'acc', counter.evolve, counter.initialState, {
            registry,
          });
          const snapshot =
            head.version > 0 && shouldSnapshot(policy, { ...head, snapshotVersion: 0 })
              ? { stream: 'acc', version: head.version, stateVersion: 1, state: head.state }
              : undefined;
          if (split < events.length) await store.append('acc', events.slice(split));
          const full = await aggregateStream(store, 'acc', counter.evolve, counter.initialState, {
            registry,
          });
          const fromSnapshot = await aggregateStream(store, 'acc', counter.evolve, counter.initialState, {
            registry,
            ...(isUsableSnapshot(policy, snapshot)
              ? { from: { state: snapshot.state as Counter, version: snapshot.version } }
              : {}),
          });
          expect(fromSnapshot.state).toEqual(full.state);
          expect(fromSnapshot.version).toBe(full.version);
          // A snapshot of another state schema is ignored, and the load is still right.
          expect(isUsableSnapshot({ ...policy, stateVersion: 2 }, snapshot)).toBe(false);
        },
      ),
      { numRuns: 50 },
    );
  });
});
