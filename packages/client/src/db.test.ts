import 'fake-indexeddb/auto';
import fc from 'fast-check';
import { type IDBPDatabase, openDB } from 'idb';
import { describe, expect, it } from 'vitest';
import { Compactor } from './compaction.ts';
import {
  type CommitInfo,
  DB_VERSION,
  decodeRecord,
  encodeRecord,
  finalize,
  openLogDb,
  packEvents,
  type StoredEvent,
  unpackEvents,
} from './db.ts';
import { LocalEventStore } from './local-event-store.ts';
import { ProjectionRunner } from './projections.ts';
import { SyncStore } from './sync-store.ts';
import { storedEvent } from './testing/log-records.ts';
import { WorkerCore } from './worker-core.ts';

/** The stores beside `log` that old databases had: snapshots came at version 5. */
function createSideStores(db: IDBPDatabase, version: number): void {
  db.createObjectStore('rejections', { keyPath: 'commitId' });
  db.createObjectStore('meta', { keyPath: 'key' });
  db.createObjectStore('rows', { keyPath: ['p', 'k'] });
  db.createObjectStore('checkpoints', { keyPath: 'p' });
  if (version >= 5) db.createObjectStore('snapshots', { keyPath: 'key' });
}

describe('the IndexedDB upgrade ladder', () => {
  it('upgrades a version 3 database: heads backfilled, the streams store dropped, the outbox kept', async () => {
    const name = 'ladder-v3';
    const old = await openDB(name, 3, {
      upgrade(db) {
        const log = db.createObjectStore('log', { keyPath: 'to' });
        log.createIndex('ids', 'ids', { unique: true, multiEntry: true });
        log.createIndex('pending', 'pq');
        log.createIndex('unacked', 'pc', { multiEntry: true });
        db.createObjectStore('streams', { keyPath: 'stream' });
        createSideStores(db, 3);
      },
    });
    const event = (id: string, version: number, lp: number) => ({
      id,
      stream: 'order-1',
      type: 'Placed',
      schemaVersion: 1,
      data: { n: version },
      metadata: {},
      version,
      lp,
      recordedAt: '2026-01-01T00:00:00.000Z',
    });
    const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
    await old.put('log', {
      from: 1,
      to: 2,
      events: [event(ids[0]!, 1, 1), event(ids[1]!, 2, 2)],
      ids,
      commits: [{ commitId: 'c-1', stream: 'order-1', ids, seq: 2048 }],
      pq: 2,
      pc: ['c-1'],
    });
    await old.put('streams', { stream: 'order-1', version: 2, ranges: [[2, 2]] });
    old.close();

    const db = await openLogDb(name);
    expect(db.version).toBe(DB_VERSION);
    expect([...db.objectStoreNames]).not.toContain('streams');
    // Version 9: merged records keep every `from` they replace in the unique index.
    const from = db.transaction('log').store.index('from');
    expect([from.unique, from.multiEntry]).toEqual([true, true]);
    expect(await from.count(1)).toBe(1);
    const store = new LocalEventStore(db);
    const read = await store.readStream('order-1');
    expect(read.events.map((e) => e.id)).toEqual(ids);
    expect(
      (
        await store.append('order-1', [{ id: crypto.randomUUID(), type: 'Paid', data: {} }], {
          expectedVersion: 2,
        })
      ).version,
    ).toBe(3);
    expect(await db.countFromIndex('log', 'unacked')).toBe(2);
    await store.close();
  });

  it('steps aside when a newer version of the app upgrades the database, and says so in status', async () => {
    const core = new WorkerCore();
    await core.init({ url: 'http://unused', store: 's', dbName: 'ladder-next', sync: false });
    await core.append('a', [{ type: 'T', data: {} }]);
    const next = await openDB('ladder-next', DB_VERSION + 1);
    expect(next.version).toBe(DB_VERSION + 1);
    next.close();
    await new Promise((r) => setTimeout(r, 30));
    expect(core.status().lastError?.code).toBe('Closed');
    await core.close();
  });

  it('upgrades a version 5 database: the per-event ids index goes, local records stay idempotent', async () => {
    const name = 'ladder-v5';
    const old = await openDB(name, 5, {
      upgrade(db) {
        const log = db.createObjectStore('log', { keyPath: 'to' });
        log.createIndex('ids', 'ids', { unique: true, multiEntry: true });
        log.createIndex('pending', 'pq');
        log.createIndex('unacked', 'pc', { multiEntry: true });
        log.createIndex('heads', 'heads', { multiEntry: true });
        createSideStores(db, 5);
      },
    });
    const event = (id: string, version: number, lp: number, position?: number) => ({
      id,
      stream: 'order-1',
      type: 'Placed',
      schemaVersion: 1,
      data: { n: version },
      metadata: {},
      version,
      lp,
      recordedAt: '2026-01-01T00:00:00.000Z',
      ...(position ? { position } : {}),
    });
    const pulledId = '00000000-0000-4000-8000-000000000009';
    const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
    await old.put('log', { from: 1, to: 1, events: [event(pulledId, 1, 1, 1)], heads: [['order-1', 1]] });
    await old.put('log', {
      from: 2,
      to: 3,
      events: [event(ids[0]!, 2, 2), event(ids[1]!, 3, 3)],
      ids,
      commits: [
        { commitId: 'c-1', stream: 'order-1', ids: [ids[0]!], seq: 3072 },
        { commitId: 'c-2', stream: 'order-1', ids: [ids[1]!], seq: 3073 },
      ],
      pq: 3,
      pc: ['c-1', 'c-2'],
      heads: [['order-1', 3]],
    });
    old.close();

    const db = await openLogDb(name);
    expect(db.version).toBe(DB_VERSION);
    const log = db.transaction('log').store;
    expect([...log.indexNames].sort()).toEqual(['from', 'heads', 'local', 'pending', 'unacked']);
    expect(await db.getAllKeysFromIndex('log', 'local')).toEqual([3]);
    const migrated = await db.get('log', 3);
    expect(migrated?.ids).toBeUndefined();
    expect(migrated?.pc).toBeUndefined();
    expect(migrated?.pn).toBe(2);
    expect(await db.getAllKeysFromIndex('log', 'unacked')).toEqual([3]);
    const store = new LocalEventStore(db);
    const retried = await store.append('order-1', [
      { id: ids[0]!, type: 'Placed', data: { n: 2 } },
      { id: ids[1]!, type: 'Placed', data: { n: 3 } },
    ]);
    expect(retried).toEqual({ version: 3, positions: [2, 3] });
    const mixed = store.append('order-1', [
      { id: ids[1]!, type: 'Placed', data: {} },
      { id: crypto.randomUUID(), type: 'Placed', data: {} },
    ]);
    await expect(mixed).rejects.toMatchObject({ code: 'IdempotencyConflict' });
    expect((await store.readStream('order-1')).version).toBe(3);
    await store.append('order-2', [{ id: crypto.randomUUID(), type: 'Placed', data: {} }]);
    const sync = new SyncStore(db, {
      projections: new ProjectionRunner([]),
      deciders: {},
      onWrite: () => {},
    });
    expect(await sync.pendingCount()).toBe(3);
    expect((await sync.outbox()).map((c) => c.commit.commitId).slice(0, 2)).toEqual(['c-1', 'c-2']);
    await store.close();
  });
});

/** A database at version 6 or 7 (their stores are the same; version 7 changed the records). */
const openStoresOf6And7 = (name: string, version: 6 | 7) =>
  openDB(name, version, {
    upgrade(db) {
      const log = db.createObjectStore('log', { keyPath: 'to' });
      log.createIndex('pending', 'pq');
      log.createIndex('unacked', 'pn');
      log.createIndex('local', 'li');
      log.createIndex('from', 'from', { unique: true });
      log.createIndex('heads', 'heads', { multiEntry: true });
      createSideStores(db, 6);
    },
  });

describe('the version 7 rung: events as one JSON text per record', () => {
  it('upgrades a version 6 database without losing an event, the outbox or a version', async () => {
    const name = 'ladder-v6';
    const old = await openStoresOf6And7(name, 6);
    const event = (stream: string, n: number, version: number, lp: number, position?: number) => ({
      id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      stream,
      type: 'Placed',
      schemaVersion: 1,
      data: { n, nested: { list: [n, 'x'] } },
      metadata: n === 1 ? { by: 'someone' } : {},
      version,
      lp,
      recordedAt: '2026-01-01T00:00:00.000Z',
      ...(position ? { position } : {}),
    });
    // A pulled page of two streams, then a local append batch with one open commit.
    const pulled = [event('a', 1, 1, 1, 1), event('b', 2, 1, 2, 2), event('a', 3, 2, 3, 3)];
    await old.put('log', {
      from: 1,
      to: 3,
      events: pulled,
      heads: [
        ['a', 2],
        ['b', 1],
      ],
    });
    const mine = [event('a', 4, 3, 4), event('a', 5, 4, 5)];
    const ids = mine.map((e) => e.id);
    await old.put('log', {
      from: 4,
      to: 5,
      li: 5,
      events: mine,
      commits: [{ commitId: 'c-1', stream: 'a', ids, seq: 5 * 1024 }],
      pq: 5,
      pn: 1,
      heads: [['a', 4]],
    });
    await old.put('meta', { key: 'sync', pulled: 3, head: 3 });
    old.close();

    const db = await openLogDb(name);
    expect(db.version).toBe(DB_VERSION);
    const stored = await db.getAll('log');
    expect(stored.map((r) => [r.to, typeof r.ev, 'events' in r])).toEqual([
      [3, 'string', false],
      [5, 'string', false],
    ]);
    const store = new LocalEventStore(db);
    const a = await store.readStream('a');
    expect(a.events.map((e) => [e.id, e.version, e.data, e.metadata])).toEqual(
      [...pulled.filter((e) => e.stream === 'a'), ...mine].map((e) => [e.id, e.version, e.data, e.metadata]),
    );
    expect((await store.readStream('b')).events.map((e) => e.id)).toEqual([pulled[1]!.id]);
    const sync = new SyncStore(db, {
      projections: new ProjectionRunner([]),
      deciders: {},
      onWrite: () => {},
    });
    const outbox = await sync.outbox();
    expect(outbox.map((c) => [c.commit.commitId, c.events.map((e) => e.id)])).toEqual([['c-1', ids]]);
    expect(await sync.pendingCount()).toBe(1);
    // The retried append is found by its ids; the next one checks the migrated version.
    expect(
      await store.append(
        'a',
        mine.map((e) => ({ id: e.id, type: e.type, data: e.data })),
      ),
    ).toEqual({
      version: 4,
      positions: [4, 5],
    });
    const next = await store.append('a', [{ id: crypto.randomUUID(), type: 'Paid', data: {} }], {
      expectedVersion: 4,
    });
    expect(next.version).toBe(5);
    await store.close();
  });
});

describe('the version 8 rung: packed record texts', () => {
  const storedEvent = fc.record({
    id: fc.uuid(),
    stream: fc.constantFrom('a', 'b', 'order-1'),
    type: fc.constantFrom('Placed', 'Paid'),
    schemaVersion: fc.integer({ min: 1, max: 3 }),
    data: fc.jsonValue(),
    metadata: fc.oneof(fc.constant({}), fc.dictionary(fc.constantFrom('by', 'why'), fc.string())),
    // Steps of 1 are the common case the packing leaves out; other steps must survive too.
    vStep: fc.constantFrom(0, 1, 1, 1, 2, -3),
    lStep: fc.constantFrom(1, 1, 1, 2, 7),
    pStep: fc.option(fc.constantFrom(1, 1, 3), { nil: undefined }),
    recordedAt: fc.constantFrom('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z'),
  });

  it('reads back every event exactly as written, whatever the record mixes', () => {
    fc.assert(
      fc.property(fc.array(storedEvent, { maxLength: 30 }), (drafts) => {
        let version = 5;
        let lp = 10;
        let position = 100;
        const events: StoredEvent[] = drafts.map(({ vStep, lStep, pStep, ...e }) => {
          version = Math.max(1, version + vStep);
          lp += lStep;
          const out: StoredEvent = { ...e, version, lp };
          if (pStep !== undefined) {
            position += pStep;
            out.position = position;
          }
          return out;
        });
        expect(unpackEvents(packEvents(events))).toStrictEqual(
          // JSON drops undefined; the stored events never held any.
          JSON.parse(JSON.stringify(events)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('stores a batch of small events in less than half the text of plain JSON', () => {
    const events: StoredEvent[] = Array.from({ length: 100 }, (_, i) => ({
      id: crypto.randomUUID(),
      stream: 'account-1',
      type: 'Deposited',
      schemaVersion: 1,
      data: { amount: i },
      metadata: {},
      version: i + 1,
      lp: i + 1,
      recordedAt: '2026-11-26T13:00:00.000Z',
    }));
    const stored = encodeRecord({ from: 1, to: 100, events, heads: [] });
    expect(stored.ev.length).toBeLessThan(JSON.stringify(events).length / 2);
    expect(unpackEvents(stored.ev)).toEqual(events);
  });

  it("stores a commit's ids once: as a range of the record's events when they are a run of them", () => {
    const events: StoredEvent[] = Array.from({ length: 6 }, (_, i) => ({
      id: crypto.randomUUID(),
      stream: i < 3 ? 'a' : 'b',
      type: 'T',
      schemaVersion: 1,
      data: {},
      metadata: {},
      version: (i % 3) + 1,
      lp: i + 1,
      recordedAt: '2026-11-26T13:00:00.000Z',
    }));
    const id = (i: number) => events[i]!.id;
    const commits: CommitInfo[] = [
      { commitId: 'c-1', stream: 'a', ids: [id(0), id(1), id(2)], seq: 1, expectedVersion: 'no_stream' },
      { commitId: 'c-2', stream: 'b', ids: [id(3), id(5)], seq: 2, acked: true },
      { commitId: 'c-3', stream: 'b', ids: [id(4)], seq: 3, expectedVersion: 2 },
    ];
    const stored = encodeRecord({ from: 1, to: 6, events, commits: structuredClone(commits), heads: [] });
    expect('commits' in stored).toBe(false);
    // The run is stored as a range; the ids that are not a run (c-2) as they are.
    expect(stored.cm!.split(id(0)).length).toBe(1);
    expect(stored.cm).toContain(id(3));
    expect(decodeRecord(stored).commits).toEqual(commits);
    // A remembered command keeps its structured clone (it is the app's value, not JSON).
    const command = { at: new Date(0), n: 1 };
    const withCommand = encodeRecord({
      from: 1,
      to: 6,
      events,
      commits: [{ ...commits[0]!, command: { decider: 'd', command } }],
      heads: [],
    });
    expect(withCommand.cm).toBeUndefined();
    expect(decodeRecord(withCommand).commits![0]!.command!.command).toEqual(command);
  });

  it('stores an append group as finalize would: the record re-encodes to itself', async () => {
    const db = await openLogDb('append-record');
    const store = new LocalEventStore(db);
    const ev = (i: number) => ({ id: crypto.randomUUID(), type: 'T', data: { i } });
    // One group: several streams, several commits per stream, an expected version, a refusal.
    await Promise.allSettled([
      store.append('a', [ev(1), ev(2)], { expectedVersion: 'no_stream' }),
      store.append('b', [ev(3)]),
      store.append('a', [ev(4)], { expectedVersion: 2 }),
      store.append('b', [ev(5)], { expectedVersion: 5 }),
      store.append('c', [ev(6), ev(7), ev(8)]),
    ]);
    await store.log.append('a', [ev(9)], { command: { decider: 'd', command: { at: new Date(0) } } });
    const stored = await db.getAll('log');
    expect(stored.map((r) => r.to)).toEqual([7, 8]);
    for (const r of stored) expect(r).toEqual(finalize(decodeRecord(r)));
    expect(decodeRecord(stored[0]!).commits!.map((c) => [c.stream, c.ids.length])).toEqual([
      ['a', 2],
      ['b', 1],
      ['a', 1],
      ['c', 3],
    ]);
    await store.close();
  });

  it('opens a version 7 database: plain texts read as they are, rewritten records are packed', async () => {
    const name = 'ladder-v7';
    const old = await openStoresOf6And7(name, 7);
    const mine = [1, 2].map((n) => ({
      id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      stream: 'a',
      type: 'Placed',
      schemaVersion: 1,
      data: { n },
      metadata: {},
      version: n,
      lp: n,
      recordedAt: '2026-01-01T00:00:00.000Z',
    }));
    const ids = mine.map((e) => e.id);
    await old.put('log', {
      from: 1,
      to: 2,
      li: 2,
      ev: JSON.stringify(mine),
      commits: [{ commitId: 'c-1', stream: 'a', ids, seq: 2 * 1024 }],
      pq: 2,
      pn: 1,
      heads: [['a', 2]],
    });
    old.close();

    const db = await openLogDb(name);
    expect(db.version).toBe(DB_VERSION);
    const store = new LocalEventStore(db);
    expect((await store.readStream('a')).events.map((e) => [e.id, e.version, e.data])).toEqual(
      mine.map((e) => [e.id, e.version, e.data]),
    );
    // A retry is found in the plain text; the next append is packed.
    expect(
      await store.append(
        'a',
        mine.map((e) => ({ id: e.id, type: e.type, data: e.data })),
      ),
    ).toEqual({ version: 2, positions: [1, 2] });
    await store.append('a', [{ id: crypto.randomUUID(), type: 'Paid', data: {} }], { expectedVersion: 2 });
    const texts = (await db.getAll('log')).map((r) => r.ev[0]);
    expect(texts).toEqual(['[', '{']);
    expect((await store.readStream('a')).events.map((e) => e.version)).toEqual([1, 2, 3]);
    await store.close();
  });
});

describe('the version 9 rung: a multiEntry from index', () => {
  it('upgrades a version 8 database with data; merged records keep guarding every stale tail', async () => {
    const name = 'ladder-v8';
    const old = await openDB(name, 8, {
      upgrade(db) {
        const log = db.createObjectStore('log', { keyPath: 'to' });
        log.createIndex('pending', 'pq');
        log.createIndex('heads', 'heads', { multiEntry: true });
        log.createIndex('unacked', 'pn');
        log.createIndex('local', 'li');
        log.createIndex('from', 'from', { unique: true });
        createSideStores(db, 8);
      },
    });
    const tx = old.transaction('log', 'readwrite');
    for (let lp = 1; lp <= 150; lp++)
      await tx.store.add(finalize({ from: lp, to: lp, heads: [], events: [storedEvent(lp, 's', lp)] }));
    await tx.done;
    old.close();

    const db = await openLogDb(name);
    const from = () => db.transaction('log').store.index('from');
    expect([from().unique, from().multiEntry, await from().count()]).toEqual([true, true, 150]);
    expect(await new Compactor(db, 60_000).compact()).toBe(149);
    // One record, 150 entries: an append decided from any of the old tails still collides.
    expect([await db.count('log'), await from().count()]).toEqual([1, 150]);
    const store = new LocalEventStore(db);
    expect((await store.readStream('s', { limit: 500 })).events.map((e) => e.version)).toEqual(
      Array.from({ length: 150 }, (_, i) => i + 1),
    );
    expect(
      (await store.append('s', [{ id: crypto.randomUUID(), type: 'T', data: {} }], { expectedVersion: 150 }))
        .version,
    ).toBe(151);
    await store.close();
  });
});

describe('local idempotency across tabs (two connections to one database)', () => {
  it('sees ids another connection appended after its id map was built', async () => {
    const name = 'two-tabs-ids';
    const a = new LocalEventStore(await openLogDb(name));
    const b = new LocalEventStore(await openLogDb(name));
    const first = [{ id: crypto.randomUUID(), type: 'T', data: {} }];
    // b builds its id map (a retry of nothing: a fresh id given by the app).
    await b.append('s-b', first);
    const fromA = [
      { id: crypto.randomUUID(), type: 'T', data: {} },
      { id: crypto.randomUUID(), type: 'T', data: {} },
    ];
    const original = await a.append('s-a', fromA);
    // b's map predates a's append: the retry through b still finds a's events.
    expect(await b.append('s-a', fromA)).toEqual(original);
    await expect(b.append('other', [fromA[1]!])).rejects.toMatchObject({ code: 'IdempotencyConflict' });
    await expect(
      b.append('s-a', [fromA[0]!, { id: crypto.randomUUID(), type: 'T', data: {} }]),
    ).rejects.toMatchObject({
      code: 'IdempotencyConflict',
    });
    // And the other way round, after b wrote.
    expect(await a.append('s-b', first)).toEqual({ version: 1, positions: [1] });
    expect((await a.readAll()).events).toHaveLength(3);
    await a.close();
    await b.close();
  });
});

describe('cached versions across tabs (two connections to one database)', () => {
  it('a cache warmed on an empty log still sees streams another connection wrote since', async () => {
    const name = 'two-tabs-empty';
    const a = new LocalEventStore(await openLogDb(name));
    const b = new LocalEventStore(await openLogDb(name));
    await a.log.warm(); // the log is empty: a assumes every stream at version 0
    const one = () => [{ id: crypto.randomUUID(), type: 'T', data: {} }];
    expect((await b.log.append('s', one(), { freshIds: true })).version).toBe(1);
    // a never read 's': its first append collides on the record's `from` and decides again.
    expect((await a.log.append('s', one(), { freshIds: true })).version).toBe(2);
    await expect(
      a.log.append('s', one(), { freshIds: true, expectedVersion: 'no_stream' }),
    ).rejects.toMatchObject({
      code: 'WrongExpectedVersion',
    });
    expect((await a.log.append('t', one(), { freshIds: true, expectedVersion: 'no_stream' })).version).toBe(
      1,
    );
    expect((await b.readStream('s')).events.map((e) => e.version)).toEqual([1, 2]);
    await a.close();
    await b.close();
  });

  it('never decides from versions another connection moved', async () => {
    const name = 'two-tabs-versions';
    const a = new LocalEventStore(await openLogDb(name));
    const b = new LocalEventStore(await openLogDb(name));
    const one = () => [{ id: crypto.randomUUID(), type: 'T', data: {} }];
    const fresh = async (store: LocalEventStore, stream: string, expectedVersion?: number | 'any') =>
      (
        await store.log.append(stream, one(), {
          freshIds: true,
          ...(expectedVersion ? { expectedVersion } : {}),
        })
      ).version;
    expect(await fresh(a, 's')).toBe(1);
    expect(await fresh(a, 's')).toBe(2); // a's cache is warm now
    expect(await fresh(b, 's')).toBe(3);
    // a's cache says 2: the append must not reuse version 3, nor refuse an expected 3.
    expect(await fresh(a, 's')).toBe(4);
    expect(await fresh(b, 's', 4)).toBe(5);
    expect(await fresh(a, 's', 5)).toBe(6);
    await expect(fresh(b, 's', 5)).rejects.toMatchObject({ code: 'WrongExpectedVersion' });
    const read = await a.readStream('s');
    expect(read.events.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(read.events.map((e) => e.position)).size).toBe(6);
    await a.close();
    await b.close();
  });
});
