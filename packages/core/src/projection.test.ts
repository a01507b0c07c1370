import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from './envelope.ts';
import {
  defineProjection,
  jsonStateCheck,
  keysOf,
  projectBatch,
  projectBatchAsJson,
  projectEvents,
  upcastOnce,
} from './projection.ts';

type Totals = { count: number; sum: number };
const totals = defineProjection<Totals>({
  name: 'totals',
  version: 1,
  types: ['Added', 'Removed', 'Reset'],
  key: (e) => (e.type === 'Reset' ? [e.stream, 'all'] : e.stream),
  initialState: () => ({ count: 0, sum: 0 }),
  evolve: (s, e) => {
    const n = (e.data as { n: number }).n;
    if (e.type === 'Reset') return null;
    return e.type === 'Added'
      ? { count: s.count + 1, sum: s.sum + n }
      : { count: s.count - 1, sum: s.sum - n };
  },
});

const eventArb = fc.record({
  stream: fc.constantFrom('a', 'b', 'c'),
  type: fc.constantFrom('Added', 'Removed', 'Reset', 'Ignored'),
  n: fc.integer({ min: -5, max: 5 }),
});
const toEnvelopes = (raw: Array<{ stream: string; type: string; n: number }>): EventEnvelope[] =>
  raw.map((r, i) => ({
    id: `id-${i}`,
    stream: r.stream,
    type: r.type,
    schemaVersion: 1,
    data: { n: r.n },
    metadata: {},
    version: i + 1,
    position: i + 1,
  }));

/** Applies batches the way a store-backed runner does: load touched rows, fold, write. */
function run(batches: EventEnvelope[][]): Map<string, Totals> {
  const rows = new Map<string, Totals>();
  for (const batch of batches) {
    const current = new Map<string, Totals>();
    for (const k of keysOf(totals, batch)) if (rows.has(k)) current.set(k, rows.get(k)!);
    for (const [k, v] of projectEvents(totals, batch, current)) {
      if (v === null) rows.delete(k);
      else rows.set(k, v);
    }
  }
  return rows;
}

describe('projection fold', () => {
  it('gives the same read model however the history is cut into batches', () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { maxLength: 60 }),
        fc.array(fc.nat(60), { maxLength: 8 }),
        (raw, cuts): void => {
          const events = toEnvelopes(raw);
          const points = [...new Set([0, ...cuts.map((c) => c % (events.length + 1)), events.length])].sort(
            (a, b) => a - b,
          );
          const batches = points.slice(1).map((p, i) => events.slice(points[i], p));
          expect(run(batches)).toEqual(run([events]));
        },
      ),
    );
  });

  it('skips types it does not handle and deletes rows evolved to null', () => {
    const events = toEnvelopes([
      { stream: 'a', type: 'Added', n: 2 },
      { stream: 'a', type: 'Ignored', n: 9 },
      { stream: 'b', type: 'Added', n: 1 },
      { stream: 'a', type: 'Reset', n: 0 },
    ]);
    expect(keysOf(totals, events.slice(0, 2))).toEqual(['a']);
    expect([...run([events])]).toEqual([['b', { count: 1, sum: 1 }]]);
  });

  it('refuses bad names and versions', () => {
    expect(() => defineProjection({ ...totals, name: '$x' })).toThrow(/projection name/);
    expect(() => defineProjection({ ...totals, version: 0 })).toThrow(/version/);
  });
});

describe('projectBatch', () => {
  const fragile = defineProjection<Totals>({
    ...totals,
    name: 'fragile',
    evolve: (s, e) => {
      if ((e.data as { n: number }).n === 5) throw new Error('five is poison');
      return totals.evolve(s, e);
    },
  });

  it('parks a poison event, leaves its rows untouched and goes on', () => {
    const events = toEnvelopes([
      { stream: 'a', type: 'Added', n: 1 },
      { stream: 'a', type: 'Reset', n: 5 },
      { stream: 'b', type: 'Added', n: 2 },
    ]);
    const out = projectBatch(fragile, events, new Map());
    expect(out.parked).toEqual([
      { position: 2, eventId: 'id-1', stream: 'a', type: 'Reset', error: 'five is poison' },
    ]);
    expect([...out.changed]).toEqual([
      ['a', { count: 1, sum: 1 }],
      ['b', { count: 1, sum: 2 }],
    ]);
    expect(out.through).toBe(3);
  });

  it("stops before the poison event under the 'stop' policy", () => {
    const stopping = defineProjection<Totals>({ ...fragile, onError: 'stop' });
    const events = toEnvelopes([
      { stream: 'a', type: 'Added', n: 1 },
      { stream: 'a', type: 'Added', n: 5 },
      { stream: 'b', type: 'Added', n: 2 },
    ]);
    const out = projectBatch(stopping, events, new Map());
    expect(out.stoppedAt?.position).toBe(2);
    expect(out.through).toBe(1);
    expect([...out.changed.keys()]).toEqual(['a']);
  });

  describe('with jsonStateCheck', () => {
    // n === 5 makes a state with a BigInt, n === 4 a cycle: neither can be stored as JSON text.
    const unstorable = defineProjection<Totals & { extra?: unknown }>({
      ...totals,
      name: 'unstorable',
      evolve: (s, e) => {
        const next = totals.evolve(s, e);
        const n = (e.data as { n: number }).n;
        if (next && n === 5) return { ...next, extra: BigInt(n) };
        if (next && n === 4) {
          const cyclic: Record<string, unknown> = { ...next };
          cyclic.extra = cyclic;
          return cyclic as Totals;
        }
        return next;
      },
    });
    const events = toEnvelopes([
      { stream: 'a', type: 'Added', n: 1 },
      { stream: 'a', type: 'Added', n: 5 },
      { stream: 'b', type: 'Added', n: 4 },
      { stream: 'a', type: 'Reset', n: 5 },
      { stream: 'b', type: 'Added', n: 2 },
    ]);

    it('parks the events whose state is not JSON; a deleted row (null) is not checked', () => {
      const out = projectBatch(unstorable, events, new Map(), { check: jsonStateCheck });
      expect(out.parked.map((p) => p.position)).toEqual([2, 3]);
      expect(out.parked[0]?.error).toMatch(/the state of key 'a' cannot be stored as JSON/);
      expect([...out.changed]).toEqual([
        ['a', null],
        ['all', null],
        ['b', { count: 1, sum: 2 }],
      ]);
      expect(out.through).toBe(5);
    });

    it("stops at the first one under the 'stop' policy", () => {
      const out = projectBatch({ ...unstorable, onError: 'stop' }, events, new Map(), {
        check: jsonStateCheck,
      });
      expect(out.stoppedAt).toMatchObject({ position: 2, stream: 'a' });
      expect([...out.changed]).toEqual([['a', { count: 1, sum: 1 }]]);
    });

    it('projectBatchAsJson folds once when every state is JSON, and again with the check when one is not', () => {
      const plain = projectBatchAsJson(unstorable, events.slice(0, 1), new Map());
      expect(plain.out.parked).toEqual([]);
      expect([...plain.texts]).toEqual([['a', '{"count":1,"sum":1}']]);
      // The states the batch leaves are checked: here a's (a BigInt) and b's (a cycle).
      const three = events.slice(0, 3);
      const checked = projectBatchAsJson(unstorable, three, new Map());
      expect(checked.out).toEqual(projectBatch(unstorable, three, new Map(), { check: jsonStateCheck }));
      expect(checked.out.parked.map((p) => p.position)).toEqual([2, 3]);
      expect([...checked.texts]).toEqual([['a', '{"count":1,"sum":1}']]);
    });

    it('refuses undefined and functions, which JSON.stringify turns into nothing', () => {
      expect(() => jsonStateCheck(undefined, 'k')).toThrow(/it is undefined/);
      expect(() => jsonStateCheck(() => 1, 'k')).toThrow(/it is function/);
      expect(() => jsonStateCheck({ a: [1, 'x', null] }, 'k')).not.toThrow();
    });
  });

  it('agrees with projectEvents when nothing throws', () => {
    fc.assert(
      fc.property(fc.array(eventArb, { maxLength: 40 }), (raw): void => {
        const events = toEnvelopes(raw);
        expect(projectBatch(totals, events, new Map()).changed).toEqual(
          projectEvents(totals, events, new Map()),
        );
      }),
    );
  });
});

describe('upcastOnce', () => {
  it('upcasts each event once, answering its result or its error again', () => {
    const [a, b] = toEnvelopes([
      { stream: 'a', type: 'Added', n: 1 },
      { stream: 'b', type: 'Added', n: 5 },
    ]) as [EventEnvelope, EventEnvelope];
    let calls = 0;
    const once = upcastOnce((e: EventEnvelope) => {
      calls++;
      if (e.stream === 'b') throw new Error('no upcaster');
      return { ...e, schemaVersion: 2 };
    });
    expect(once(a)).toBe(once(a));
    expect(once(a).schemaVersion).toBe(2);
    expect(() => once(b)).toThrow('no upcaster');
    expect(() => once(b)).toThrow('no upcaster');
    expect(calls).toBe(2);
  });
});
