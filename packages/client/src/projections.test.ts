import 'fake-indexeddb/auto';
import { defineProjection, type ProjectionDefinition } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openLogDb, type StoredEvent } from './db.ts';
import { canonicalOrder, ProjectionRunner } from './projections.ts';
import { FakeServer } from './testing/fake-server.ts';
import { WorkerCore } from './worker-core.ts';

type Row = { count: number; sum: number };
const totals = defineProjection<Row>({
  name: 'totals',
  version: 1,
  types: ['Added'],
  key: (e) => (e.data as { key: string }).key,
  initialState: () => ({ count: 0, sum: 0 }),
  evolve: (s, e) => {
    const { n } = e.data as { n: number };
    if (n < 0) throw new Error('negative');
    return { count: s.count + 1, sum: s.sum + n };
  },
});
const stopping = defineProjection<Row>({ ...totals, name: 'stopping', onError: 'stop' });

const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});
let dbs = 0;
/** A worker without sync on a fresh database, or on `dbName` (another tab of it). */
async function core(
  projections: readonly ProjectionDefinition<never, never>[] = [totals, stopping] as never,
  dbName = `projections-${++dbs}`,
) {
  const c = new WorkerCore({ projections });
  open.push(c);
  await c.init({ url: 'http://unused', store: 's', dbName, sync: false });
  return c;
}

const key = (i: number) => `k-${String(i).padStart(4, '0')}`;

/**
 * Two tabs of one database running two builds: `count` counts events per stream, by 1 in the
 * old build's version 1 and by 10 in the new build's version 2.
 */
async function twoBuilds() {
  const v1 = defineProjection<number>({
    name: 'count',
    version: 1,
    key: (e) => e.stream,
    initialState: () => 0,
    evolve: (n) => n + 1,
  });
  const v2 = defineProjection<number>({ ...v1, version: 2, evolve: (n) => n + 10 });
  const name = `projections-${++dbs}`;
  return { oldTab: await core([v1] as never, name), newTab: await core([v2] as never, name) };
}

describe('client projections', () => {
  it('reads the rows of a wide batch by range, dense or sparse, and folds like a plain fold', async () => {
    const c = await core();
    const expected = new Map<string, Row>();
    const add = async (keys: number[], n: number) => {
      await c.append(
        's',
        keys.map((i) => ({ type: 'Added', data: { key: key(i), n } })),
      );
      for (const i of keys) {
        const row = expected.get(key(i)) ?? { count: 0, sum: 0 };
        expected.set(key(i), { count: row.count + 1, sum: row.sum + n });
      }
    };
    const all = Array.from({ length: 1000 }, (_, i) => i);
    await add(all, 1); // 1,000 new keys
    await add(all.slice(0, 100), 2); // dense: 100 keys, 100 rows in their range
    await add([0, ...all.slice(0, 70).map((i) => i * 14)], 3); // sparse: 71 keys over ~980 rows
    await add([5, 5, 999], 4); // few keys: one get each
    const rows = await c.queryProjection('totals', { limit: 2000 });
    expect(rows.length).toBe(1000);
    expect(new Map(rows.map((r) => [r.key, r.state]))).toEqual(expected);
  });

  it("parks under 'park' and stops under 'stop', keeping what came before", async () => {
    const c = await core();
    await c.append('s', [
      { type: 'Added', data: { key: 'a', n: 1 } },
      { type: 'Added', data: { key: 'a', n: -1 } },
      { type: 'Added', data: { key: 'a', n: 2 } },
    ]);
    await c.append('s', [{ type: 'Added', data: { key: 'a', n: 5 } }]);
    expect(await c.readProjection('totals', 'a')).toEqual({ count: 3, sum: 8 });
    expect(await c.readProjection('stopping', 'a')).toEqual({ count: 1, sum: 1 });
    const status = await c.projectionStatus();
    expect(status.map((s) => [s.name, s.parked])).toEqual([
      ['totals', 1],
      ['stopping', 0],
    ]);
  });

  it('parks an event whose state is not JSON, as the edge does; the appends it was grouped with commit', async () => {
    // The same rule as the edge's (a state JSON cannot write parks the event that made it), so
    // the same definition gives the same rows on both sides. Both check the states a batch
    // leaves (and refold with a check per event only then), so each bad state here is its key's last.
    const tallies = defineProjection<unknown>({
      name: 'tallies',
      version: 1,
      types: ['Tallied'],
      key: (e) => (e.data as { key: string }).key,
      initialState: () => ({ n: 0 }),
      evolve: (s, e) => {
        const d = e.data as { n?: number; make?: 'bigint' | 'undefined' | 'date' };
        if (d.make === 'bigint') return { n: 0, big: BigInt(1) };
        if (d.make === 'undefined') return undefined;
        if (d.make === 'date') return { n: (s as { n: number }).n, at: new Date(0) };
        return { n: (s as { n: number }).n + (d.n ?? 0) };
      },
    });
    const c = new WorkerCore({ projections: [tallies] });
    open.push(c);
    await c.init({ url: 'http://unused', store: 's', dbName: `projections-${++dbs}`, sync: false });
    const tally = (key: string, data: Record<string, unknown>) => ({
      type: 'Tallied',
      data: { key, ...data },
    });
    await c.append('s', [tally('a', { n: 1 })]);
    // Issued together: one group commit, one transaction.
    const results = await Promise.allSettled([
      c.append('s', [tally('a', { n: 2 })]),
      c.append('s', [tally('x', { make: 'bigint' }), tally('b', { n: 5 })]),
      c.append('s', [tally('y', { make: 'undefined' })]),
      c.append('s', [tally('a', { n: 4 }), tally('c', { make: 'date' })]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect((await c.readStream('s')).version).toBe(7);
    const rows = await c.queryProjection('tallies');
    expect(rows).toEqual([
      { key: 'a', state: { n: 7 } },
      { key: 'b', state: { n: 5 } },
      // Stored as JSON text is read back: the edge holds the same row.
      { key: 'c', state: { n: 0, at: '1970-01-01T00:00:00.000Z' } },
    ]);
    const [status] = await c.projectionStatus();
    expect(status).toMatchObject({ checkpoint: 7, head: 7, parked: 2 });
  });

  it('folds a batch of more events than a function call takes arguments (a whole log)', async () => {
    const db = await openLogDb(`projections-${++dbs}`);
    const events: StoredEvent[] = Array.from({ length: 200_000 }, (_, i) => ({
      id: `e-${i}`,
      stream: 's',
      type: i % 1000 === 0 ? 'Added' : 'Other',
      schemaVersion: 1,
      data: { key: 'a', n: 1 },
      metadata: {},
      version: i + 1,
      lp: i + 1,
      recordedAt: '2026-01-01T00:00:00.000Z',
    }));
    const tx = db.transaction(['rows', 'checkpoints'], 'readwrite');
    await new ProjectionRunner([totals]).apply(tx, events);
    await tx.done;
    expect(await db.get('rows', ['totals@1', 'a'])).toMatchObject({ state: { count: 200, sum: 200 } });
    expect((await db.get('checkpoints', 'totals@1'))?.lp).toBe(200_000);
    db.close();
  });

  it('reads the newest version of a projection a worker holds two versions of', async () => {
    const doubled = defineProjection<Row>({
      ...totals,
      version: 2,
      evolve: (r, e) => ({ count: r.count + 1, sum: r.sum + 2 * (e.data as { n: number }).n }),
    });
    // Listed newest first and newest last: the answer must not depend on the order.
    for (const projections of [
      [doubled, totals],
      [totals, doubled],
    ]) {
      const c = await core(projections as never);
      await c.append('s', [{ type: 'Added', data: { key: 'a', n: 5 } }]);
      expect(await c.readProjection('totals', 'a')).toEqual({ count: 1, sum: 10 });
      expect(await c.queryProjection('totals')).toEqual([{ key: 'a', state: { count: 1, sum: 10 } }]);
    }
  });

  it('tabs of two builds, with different projection versions, each fold every write', async () => {
    const { oldTab, newTab } = await twoBuilds();
    // Each writes once, with only its own projection in the transaction.
    await oldTab.append('s1', [{ type: 'X', data: {} }]);
    await newTab.append('s1', [{ type: 'X', data: {} }]);
    expect(await newTab.readProjection('count', 's1')).toBe(20);
    // The old tab writes again; the new tab hears of it and catches up without writing.
    await oldTab.append('s1', [{ type: 'X', data: {} }]);
    for (let i = 0; i < 100 && (await newTab.readProjection('count', 's1')) !== 30; i++)
      await new Promise((r) => setTimeout(r, 5));
    expect(await newTab.readProjection('count', 's1')).toBe(30);
    expect(await oldTab.readProjection('count', 's1')).toBe(3);
    const status = await newTab.projectionStatus();
    expect(status.map((p) => [p.name, p.version, p.checkpoint, p.head])).toEqual([['count', 2, 3, 3]]);
  });

  it("a subscriber woken by another build's write reads the rows folded", async () => {
    const { oldTab, newTab } = await twoBuilds();
    const read: unknown[] = [];
    await newTab.subscribe({}, async (events) => {
      for (const _ of events) read.push(await newTab.readProjection('count', 's1'));
    });
    for (let i = 0; i < 3; i++) await oldTab.append('s1', [{ type: 'X', data: {} }]);
    for (let i = 0; i < 100 && read.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    // Each read, made as the subscriber is handed the event, sees at least that event folded.
    expect(read.map((n, i) => (n as number) >= 10 * (i + 1))).toEqual([true, true, true]);
  });

  it('a stopped projection is not refolded when another tab writes', async () => {
    const folds = { n: 0 };
    const counted = defineProjection<Row>({
      ...stopping,
      evolve: (r, e) => {
        folds.n++;
        return stopping.evolve(r, e);
      },
    });
    const name = `projections-${++dbs}`;
    const a = await core([counted] as never, name);
    const b = await core([counted] as never, name);
    await a.append('s', [{ type: 'Added', data: { key: 'a', n: 1 } }]);
    await a.append('s', [{ type: 'Added', data: { key: 'a', n: -1 } }]);
    await new Promise((r) => setTimeout(r, 30));
    const before = folds.n;
    for (let i = 0; i < 10; i++) await a.append('s', [{ type: 'Added', data: { key: 'a', n: 1 } }]);
    await new Promise((r) => setTimeout(r, 50));
    // Only A's own appends ran the (stopped) projection: nothing folded it again in B.
    expect(folds.n - before).toBe(0);
    expect(await b.readProjection('stopping', 'a')).toEqual({ count: 1, sum: 1 });
  });

  it('a projection stopped at a pending event still folds the events the server ordered before it', async () => {
    const server = new FakeServer();
    const client = async () => {
      const c = new WorkerCore({
        projections: [stopping],
        transport: () => server.transport(),
        engine: { backoffBase: 1, backoffCap: 5 },
      });
      open.push(c);
      await c.init({
        url: 'http://fake',
        store: 's',
        dbName: `projections-${++dbs}`,
        online: false,
        token: 't',
      });
      return c;
    };
    const a = await client();
    const b = await client();
    // A, offline, appends an event the projection stops at; B commits first.
    await a.append('sa', [{ type: 'Added', data: { key: 'a', n: -1 } }]);
    b.setOnline(true);
    await b.append('sb', [{ type: 'Added', data: { key: 'b', n: 5 } }]);
    await b.syncNow();
    a.setOnline(true);
    await a.syncNow();
    await a.syncNow();
    // The server's order: B's event, then A's. Both sides fold B's and stop at A's.
    expect(await a.readProjection('stopping', 'b')).toEqual({ count: 1, sum: 5 });
    await b.syncNow();
    expect(await b.readProjection('stopping', 'b')).toEqual({ count: 1, sum: 5 });
    const [status] = (await a.projectionStatus()).filter((p) => p.name === 'stopping');
    expect(status).toBeDefined();
  });

  it('orders the log canonically: confirmed by server position, then pending in local order', () => {
    const e = (lp: number, position?: number) =>
      ({ lp, ...(position === undefined ? {} : { position }) }) as StoredEvent;
    const order = canonicalOrder([e(1), e(2, 3), e(3, 1), e(4), e(5, 2)]).map((x) => x.lp);
    expect(order).toEqual([3, 5, 2, 1, 4]);
  });
});
