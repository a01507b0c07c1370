// The Worker the server's tests run: the real one, configured with test projections, an
// event registry with a type stored at three schema versions, and a decider with snapshots.
import { defineProjection, eventRegistry } from '@edgelog/core';
import { Priced } from '@edgelog/core/testing';
import { configureEdge } from '../src/config.ts';

type Added = { sku: string; qty: number };

const totalsV1 = defineProjection<{ qty: number }>({
  name: 'totals',
  version: 1,
  types: ['Added'],
  key: (e) => (e.data as Added).sku,
  initialState: () => ({ qty: 0 }),
  evolve: (s, e) => ({ qty: s.qty + (e.data as Added).qty }),
});

const totalsV2 = defineProjection<{ qty: number; events: number }>({
  name: 'totals',
  version: 2,
  types: ['Added'],
  key: (e) => (e.data as Added).sku,
  initialState: () => ({ qty: 0, events: 0 }),
  evolve: (s, e) => {
    const { qty } = e.data as Added;
    if (qty < 0) throw new Error('negative quantity');
    return { qty: s.qty + qty, events: s.events + 1 };
  },
});

/** A row per sku while its balance is not zero: deleted when it reaches zero, made again after. */
const balances = defineProjection<{ n: number }>({
  name: 'balances',
  version: 1,
  types: ['Added'],
  key: (e) => (e.data as Added).sku,
  initialState: () => ({ n: 0 }),
  evolve: (s, e) => {
    const n = s.n + (e.data as Added).qty;
    return n === 0 ? null : { n };
  },
});

/** A count per key; an event with `big` makes a state JSON cannot hold (it carries a BigInt). */
const tallies = defineProjection<{ n: number; big?: bigint }>({
  name: 'tallies',
  version: 1,
  types: ['Tallied'],
  key: (e) => (e.data as { key: string }).key,
  initialState: () => ({ n: 0 }),
  evolve: (s, e) => {
    const d = e.data as { n?: number; big?: boolean };
    return d.big ? { n: s.n, big: BigInt(1) } : { n: s.n + (d.n ?? 0) };
  },
});

/** A count per key that stops (onError 'stop') at an event with `bad`, instead of parking it. */
const guarded = defineProjection<{ n: number }>({
  name: 'guarded',
  version: 1,
  types: ['Guarded'],
  onError: 'stop',
  key: (e) => (e.data as { key: string }).key,
  initialState: () => ({ n: 0 }),
  evolve: (s, e) => {
    if ((e.data as { bad?: boolean }).bad) throw new Error('a bad event');
    return { n: s.n + 1 };
  },
});

type Price = { sku: string; price: { amount: number; currency: string }; taxRate: number };

/** The last price of each sku, as the current shape shows it. */
const prices = defineProjection<Price & { changes: number }>({
  name: 'prices',
  version: 1,
  types: ['Priced'],
  key: (e) => (e.data as Price).sku,
  initialState: (sku) => ({ sku, price: { amount: 0, currency: 'EUR' }, taxRate: 0, changes: 0 }),
  evolve: (s, e) => ({ ...(e.data as Price), changes: s.changes + 1 }),
});

/** A stream's price history, for aggregate loads (with snapshots every 5 events). */
const pricing = {
  initialState: () => ({ last: null as Price | null, changes: 0 }),
  evolve: (s: { last: Price | null; changes: number }, e: { type: string; data: unknown }) =>
    e.type === 'Priced' ? { last: e.data as Price, changes: s.changes + 1 } : s,
  decide: () => [],
};

configureEdge({
  projections: [totalsV1, totalsV2, prices, balances, tallies, guarded],
  registry: eventRegistry([Priced]),
  deciders: { pricing },
  snapshots: { pricing: { stateVersion: 1, every: 5 } },
});

export { default, ProjectionDO, SequencerDO, StreamDO } from '../src/worker.ts';
