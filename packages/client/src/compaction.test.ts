import 'fake-indexeddb/auto';
import { randomId } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { COMPACT_EVENTS, COMPACT_SHARE, COMPACT_SMALL, Compactor } from './compaction.ts';
import {
  type CommitInfo,
  decodeRecord as decode,
  finalize,
  type LogDb,
  type LogRecord,
  openLogDb,
  type StoredEvent,
} from './db.ts';
import { defaultClientLimits } from './local-event-store.ts';
import { type LocalAppendResult, LocalLog } from './local-log.ts';
import { loadStream, loadWindow, streamVersion, tailKey } from './log-reads.ts';
import { FakeServer } from './testing/fake-server.ts';
import { lpId, settleRecord, storedEvent } from './testing/log-records.ts';
import { WorkerCore } from './worker-core.ts';

let n = 0;
const dbs: LogDb[] = [];
const cores: WorkerCore[] = [];
afterEach(async () => {
  for (const c of cores.splice(0)) await c.close();
  for (const db of dbs.splice(0)) db.close();
});

const streams = ['a', 'b', 'c'];

/** A log written by hand: records of `[from, to]` local positions, events spread over three streams. */
async function handLog(
  spans: ReadonlyArray<[number, number, 'settled' | 'pending']>,
  streamOf = (lp: number) => streams[lp % 3]!,
) {
  const db = await openLogDb(`compaction-${++n}`);
  dbs.push(db);
  const versions = new Map<string, number>();
  const tx = db.transaction('log', 'readwrite');
  for (const [from, to, state] of spans) {
    const events: StoredEvent[] = [];
    for (let lp = from; lp <= to; lp++) {
      const stream = streamOf(lp);
      const version = (versions.get(stream) ?? 0) + 1;
      versions.set(stream, version);
      const event = storedEvent(lp, stream, version, { settled: state === 'settled' });
      events.push(event);
    }
    const rec: LogRecord = { from, to, events, heads: [], li: to };
    if (state === 'pending') {
      rec.commits = events.map(
        (e, i): CommitInfo => ({ commitId: `c-${e.lp}`, stream: e.stream, ids: [e.id], seq: to * 1024 + i }),
      );
    }
    await tx.store.add(finalize(rec));
  }
  await tx.done;
  return db;
}

const singles = (from: number, to: number, state: 'settled' | 'pending' = 'settled') =>
  Array.from({ length: to - from + 1 }, (_, i): [number, number, 'settled' | 'pending'] => [
    from + i,
    from + i,
    state,
  ]);

/** What every reader sees of the log: all events in order, each stream, the versions and the tail. */
async function view(db: LogDb) {
  const log = db.transaction('log').store;
  const all = (await log.getAll()).flatMap((r) => decode(r).events);
  const out: Record<string, unknown> = { all: all.map((e) => [e.lp, e.id, e.stream, e.version, e.position]) };
  for (const s of streams) {
    out[`stream ${s}`] = (await loadStream(log, s)).map((e) => [e.lp, e.version]);
    out[`stream ${s} after 7`] = (await loadStream(log, s, 7)).map((e) => [e.lp, e.version]);
    out[`window ${s}`] = (await loadWindow(log, s, 5, 40)).map((e) => [e.lp, e.version]);
    out[`version ${s}`] = await streamVersion(log, s);
  }
  out.tail = await tailKey(log);
  return out;
}

const records = async (db: LogDb) =>
  (await db.getAll('log')).map((r) => [
    Array.isArray(r.from) ? r.from[0] : r.from,
    r.to,
    r.pq === undefined ? 'settled' : 'pending',
  ]);

describe('the compactor', () => {
  it('merges runs of small settled records, never a pending one, and every read answers the same', async () => {
    // 1..29 single records, 30 pending, 31..45 singles, 46..195 one large record, 196..230 singles.
    const db = await handLog([
      ...singles(1, 29),
      [30, 30, 'pending'],
      ...singles(31, 45),
      [46, 195, 'settled'],
      ...singles(196, 230),
    ]);
    const before = await view(db);
    // Pages of 7 keys: runs carry over from page to page.
    const compactor = new Compactor(db, 60_000, 7);
    expect(await compactor.compact()).toBe(14);
    expect(await records(db)).toEqual([
      // The run before a pending record waits for it to settle.
      ...singles(1, 29),
      [30, 30, 'pending'],
      [31, 45, 'settled'],
      [46, 195, 'settled'],
      // The tail run spans fewer positions than a large record: it waits for more.
      ...singles(196, 230),
    ]);
    expect(await view(db)).toEqual(before);
    expect(await compactor.compact()).toBe(0);
  });

  it('merges a log of many streams one event each only into records where each keeps a share', async () => {
    // 320 single events of 320 streams: a stream read from a record of 500 others' events
    // would decode 500 events for its one; in records of COMPACT_SHARE events, 16.
    const db = await handLog(singles(1, 320), (lp) => `agg-${lp}`);
    const before = (await db.getAll('log')).flatMap((r) => decode(r).events);
    expect(await new Compactor(db, 60_000).compact()).toBe(320 - 320 / COMPACT_SHARE);
    const after = await db.getAll('log');
    expect(after.map((r) => decode(r).events.length)).toEqual(Array(320 / COMPACT_SHARE).fill(COMPACT_SHARE));
    expect(after.flatMap((r) => decode(r).events)).toEqual(before);
  });

  it('still refuses a writer that decided from the tail of a record merged away', async () => {
    // Tab B appended one event (its cache: tail 1, s@1); it settled; the leader then pulled
    // 120 live events of `s`, one record each. B has not heard of them yet.
    const db = await openLogDb(`compaction-${++n}`);
    dbs.push(db);
    const tabB = new LocalLog(db, defaultClientLimits, () => undefined);
    const fresh = () => ({ id: randomId(), type: 'Noted', data: {} });
    await tabB.append('s', [fresh()], { freshIds: true });
    await settleRecord(db, 1);
    const tx = db.transaction('log', 'readwrite');
    for (let lp = 2; lp <= 121; lp++)
      await tx.store.add(finalize({ from: lp, to: lp, events: [storedEvent(lp, 's', lp)], heads: [] }));
    await tx.done;
    expect(await new Compactor(db, 60_000).compact()).toBe(120);
    expect(await records(db)).toEqual([[1, 121, 'settled']]);
    // B's cached tail is 1: its record (from 2) collides with the merged one, and B decides again.
    const r = await tabB.append('s', [fresh(), fresh()], { freshIds: true });
    expect(r.version).toBe(123);
    expect(r.positions).toEqual([122, 123]);
    const versions = (await loadStream(db.transaction('log').store, 's')).map((e) => e.version);
    expect(versions).toEqual(Array.from({ length: 123 }, (_, i) => i + 1));
  });

  it('merges a run through a pending record once it settles, and long tail runs in bounded records', async () => {
    const db = await handLog([
      ...singles(1, 9),
      [10, 10, 'pending'],
      ...singles(11, 20),
      [21, 200, 'settled'],
    ]);
    const compactor = new Compactor(db, 60_000, 4);
    expect(await compactor.compact()).toBe(9);
    // A long run at the tail while the record stays pending: records of at most COMPACT_EVENTS
    // positions, then a rest that waits.
    const more = 2 * COMPACT_EVENTS + COMPACT_SMALL / 2;
    const add = db.transaction('log', 'readwrite');
    for (const [from, to] of singles(201, 200 + more))
      await add.store.add(finalize({ from, to, events: [storedEvent(from, 'd', from - 200)], heads: [] }));
    await add.done;
    const before = await view(db);
    // The pass resumes after what the last one looked at behind the pending record (key 200).
    const lowers: unknown[] = [];
    const getAllKeys = IDBObjectStore.prototype.getAllKeys;
    IDBObjectStore.prototype.getAllKeys = function (this: IDBObjectStore, query, count) {
      lowers.push((query as IDBKeyRange | null)?.lower);
      return getAllKeys.call(this, query, count);
    };
    try {
      expect(await compactor.compact()).toBe(2 * (COMPACT_EVENTS - 1));
    } finally {
      IDBObjectStore.prototype.getAllKeys = getAllKeys;
    }
    expect(lowers[0]).toBe(200);
    expect(await view(db)).toEqual(before);
    // The pending record settles (what a pull does): the runs on both sides of it merge.
    await settleRecord(db, 10);
    expect(await compactor.compact()).toBe(10);
    expect(await records(db)).toEqual([
      [1, 20, 'settled'],
      [21, 200, 'settled'],
      [201, 200 + COMPACT_EVENTS, 'settled'],
      [201 + COMPACT_EVENTS, 200 + 2 * COMPACT_EVENTS, 'settled'],
      ...singles(201 + 2 * COMPACT_EVENTS, 200 + more),
    ]);
  });
});

describe('compaction in a client', () => {
  it('merges synced single appends and live single events; reads, retries and appends still work', async () => {
    const server = new FakeServer();
    const names = new Map<WorkerCore, string>();
    const recordCount = async (c: WorkerCore) => {
      const db = await openLogDb(names.get(c)!);
      const count = await db.count('log');
      db.close();
      return count;
    };
    const make = async (pullLimit?: number) => {
      const core = new WorkerCore({
        transport: () => server.transport(),
        compactDelayMs: 60_000,
        ...(pullLimit ? { engine: { pullLimit } } : {}),
      });
      cores.push(core);
      const dbName = `compaction-client-${++n}`;
      names.set(core, dbName);
      await core.init({ url: 'http://fake', store: 's', dbName, token: 't' });
      return core;
    };
    const a = await make();
    // B pulls one event at a time, as a client online while others write receives them live.
    const b = await make(1);
    const given = Array.from({ length: 300 }, (_, i) => lpId(i + 1));
    const first: LocalAppendResult[] = [];
    for (let i = 0; i < 300; i++) {
      const r = await a.append(`acc-${i % 2}`, [{ id: given[i]!, type: 'Noted', data: { i } }]);
      first.push(r as LocalAppendResult);
    }
    for (let i = 0; i < 3; i++) {
      await a.syncNow();
      await b.syncNow();
    }
    const head = (await server.store.readAll({ limit: 1 })).head;
    expect(head).toBe(300);
    const seen = async (c: WorkerCore) => ({
      all: (await c.readAll({ limit: 1000 })).events.map((e) => [
        e.id,
        e.stream,
        e.version,
        e.serverPosition,
      ]),
      acc0: await c.readStream('acc-0', { limit: 1000 }),
      acc1: await c.readStream('acc-1', { limit: 1000 }),
    });
    for (const c of [a, b]) {
      const before = await seen(c);
      expect(before.all).toHaveLength(300);
      const removed = await c.compact();
      expect(removed).toBeGreaterThan(100);
      // 300 events spanning 300 positions: one record now.
      expect(await recordCount(c)).toBe(1);
      expect(await seen(c)).toEqual(before);
    }
    // A retry of an append made before the merge (the id map still names the old records) is
    // answered as the duplicate it is, not appended again.
    const retry = await a.append('acc-0', [{ id: given[0]!, type: 'Noted', data: { i: 0 } }]);
    expect(retry.version).toBe(first[0]!.version);
    expect(retry.positions).toEqual(first[0]!.positions);
    const next = await a.append('acc-0', [{ type: 'Noted', data: { i: 300 } }]);
    expect(next.version).toBe(151);
    await a.syncNow();
    expect((await server.store.readAll({ limit: 1000 })).events).toHaveLength(301);
  });
});
