import 'fake-indexeddb/auto';
import { type DataOf, defineProjection, eventRegistry } from '@edgelog/core';
import { pricedGolden as golden, Priced } from '@edgelog/core/testing';
import { openDB } from 'idb';
import { afterEach, describe, expect, it } from 'vitest';
import { eventsOf } from './db.ts';
import { FakeServer } from './testing/fake-server.ts';
import { WorkerCore } from './worker-core.ts';

// I8 in the client: golden fixtures (stored Priced events of every schema version, the same
// cases the server reads in its tests) read as the current shape on every local read path,
// whether they were pulled from the server or appended locally at an old version; the bytes
// stored in IndexedDB stay as written.

type Price = DataOf<typeof Priced>;

const prices = defineProjection<Price>({
  name: 'prices',
  version: 1,
  types: ['Priced'],
  key: (e) => (e.data as Price).sku,
  initialState: (sku) => ({ sku, price: { amount: 0, currency: 'EUR' }, taxRate: 0 }),
  evolve: (_, e) => e.data as Price,
});
/** Re-prices at the last price plus one: what it emits shows the shape the load folded. */
const pricing = {
  initialState: () => ({ last: null as Price | null }),
  evolve: (_: { last: Price | null }, e: { data: unknown }) => ({ last: e.data as Price }),
  decide: (_: unknown, s: { last: Price | null }) => [
    { type: 'Priced', data: { ...s.last!, price: { ...s.last!.price, amount: s.last!.price.amount + 1 } } },
  ],
};

const expected = golden.events.map((e) => [golden.currentVersion, e.current]);
const shapes = (events: Array<{ schemaVersion: number; data: unknown }>) =>
  events.map((e) => [e.schemaVersion, e.data]);

const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
let dbs = 0;

async function client(server: FakeServer) {
  const dbName = `golden-${++dbs}`;
  const core = new WorkerCore({
    registry: eventRegistry([Priced]),
    projections: [prices],
    deciders: { pricing },
    snapshots: { pricing: { stateVersion: 1, every: 2 } },
    transport: () => server.transport(),
  });
  open.push(core);
  await core.init({ url: 'http://fake', store: 's', dbName, online: true, token: 't', live: false });
  return { core, dbName };
}

const fixtureEvents = () =>
  golden.events.map((e) => ({
    id: crypto.randomUUID(),
    type: golden.type,
    schemaVersion: e.schemaVersion,
    data: e.data,
  }));

describe('client read-path upcasting of golden fixtures (I8)', () => {
  it('pulled events read as the current shape on every path; the stored bytes do not change', async () => {
    const server = new FakeServer();
    await server.store.append('price-tea', fixtureEvents());
    const { core, dbName } = await client(server);
    await core.syncNow();
    expect(shapes((await core.readStream('price-tea')).events)).toEqual(expected);
    expect(shapes((await core.readAll()).events)).toEqual(expected);
    const seen: Array<{ schemaVersion: number; data: unknown }> = [];
    const id = await core.subscribe({}, (events) => {
      seen.push(...events);
    });
    await core.unsubscribe(id);
    expect(shapes(seen)).toEqual(expected);
    expect(await core.readProjection('prices', 'tea')).toEqual(golden.events.at(-1)!.current);
    // Twice: the second load starts from the snapshot the first stored.
    for (let i = 1; i <= 2; i++) {
      const r = await core.execute('pricing', 'price-tea', {});
      const last = golden.events.at(-1)!.current;
      expect(r.events.map((e) => e.data)).toEqual([
        { ...last, price: { ...last.price, amount: last.price.amount + i } },
      ]);
      await core.syncNow();
    }
    const db = await openDB(dbName);
    const stored = (await db.getAll('log')).flatMap((r) => eventsOf(r).slice(0, 3));
    db.close();
    expect(shapes(stored.slice(0, 3))).toEqual(golden.events.map((e) => [e.schemaVersion, e.data]));
  });

  it('events appended locally at an old version read as the current shape', async () => {
    const { core } = await client(new FakeServer());
    await core.append('price-local', fixtureEvents());
    expect(shapes((await core.readStream('price-local')).events)).toEqual(expected);
    expect(await core.readProjection('prices', 'tea')).toEqual(golden.events.at(-1)!.current);
  });
});
