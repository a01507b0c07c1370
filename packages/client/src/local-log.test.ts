import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { finalize, type LogRecord, openLogDb, type StoredEvent } from './db.ts';
import { LocalEventStore } from './local-event-store.ts';
import { loadStream } from './log-reads.ts';

const ev = (stream: string, version: number, lp: number): StoredEvent => ({
  id: crypto.randomUUID(),
  stream,
  type: 'T',
  schemaVersion: 1,
  data: { version },
  metadata: {},
  version,
  lp,
  recordedAt: '2026-01-01T00:00:00.000Z',
});

describe('readStream windows', () => {
  it('reads every version of a window when records hold non-contiguous versions (a replay hole)', async () => {
    const db = await openLogDb('windows');
    // Record 4 holds versions 1..3 and 5 (its commit for 4 was replayed into record 6), record 6
    // holds version 4, record 40 versions 6..40, interleaved with another stream.
    const records: LogRecord[] = [
      { from: 1, to: 4, events: [ev('s', 1, 1), ev('s', 2, 2), ev('s', 3, 3), ev('s', 5, 4)], heads: [] },
      { from: 5, to: 6, events: [ev('s', 4, 5), ev('o', 1, 6)], heads: [] },
      {
        from: 7,
        to: 76,
        events: Array.from({ length: 70 }, (_, i) =>
          i % 2 ? ev('o', 2 + (i >> 1), 7 + i) : ev('s', 6 + (i >> 1), 7 + i),
        ),
        heads: [],
      },
    ];
    for (const r of records) await db.put('log', finalize(r));
    const store = new LocalEventStore(db);
    const versions = async (o: Parameters<LocalEventStore['readStream']>[1]) =>
      (await store.readStream('s', o)).events.map((e) => e.version);
    const all = Array.from({ length: 40 }, (_, i) => i + 1);
    expect(await versions({})).toEqual(all);
    expect(await versions({ from: 4, limit: 3 })).toEqual([4, 5, 6]);
    expect(await versions({ from: 5, limit: 1 })).toEqual([5]);
    expect(await versions({ from: 39, limit: 10 })).toEqual([39, 40]);
    expect(await versions({ from: 41 })).toEqual([]);
    expect(await versions({ direction: 'backward', limit: 4 })).toEqual([40, 39, 38, 37]);
    expect(await versions({ direction: 'backward', from: 6, limit: 3 })).toEqual([6, 5, 4]);
    expect((await store.readStream('s', { from: 3, limit: 2 })).version).toBe(40);
    await store.close();
  });

  it('reads a long stream of small records in a few chunks, in version order', async () => {
    const db = await openLogDb('windows-many');
    const store = new LocalEventStore(db);
    for (let i = 0; i < 300; i++)
      await store.append('s', [{ id: crypto.randomUUID(), type: 'T', data: { i } }]);
    const page = await store.readStream('s', { from: 101, limit: 150 });
    expect(page.events.map((e) => e.version)).toEqual(Array.from({ length: 150 }, (_, i) => 101 + i));
    expect(page.version).toBe(300);
    await store.close();
  });

  it('loads a whole stream alike through the index and through a key range scan', async () => {
    const db = await openLogDb('load-dense');
    // 's' takes most records (a key range scan), 'x' a few (the index), 'o' sits in between.
    const records: LogRecord[] = [];
    let lp = 0;
    const versions = new Map<string, number>();
    const next = (stream: string) => {
      const v = (versions.get(stream) ?? 0) + 1;
      versions.set(stream, v);
      return ev(stream, v, ++lp);
    };
    for (let i = 0; i < 60; i++) {
      const events = i % 3 === 2 ? [next('o'), next('x'), next('s')] : [next('s')];
      records.push({ from: lp - events.length + 1, to: lp, events, heads: [] });
    }
    for (const r of records) await db.put('log', finalize(r));
    const load = async (stream: string, after = 0) =>
      (await loadStream(db.transaction('log').store, stream, after)).map((e) => [e.stream, e.version]);
    const expected = (stream: string, after = 0) =>
      Array.from({ length: versions.get(stream)! - after }, (_, i) => [stream, after + i + 1]);
    expect(await load('s')).toEqual(expected('s'));
    expect(await load('s', 55)).toEqual(expected('s', 55));
    expect(await load('x')).toEqual(expected('x'));
    expect(await load('o', 7)).toEqual(expected('o', 7));
    expect(await load('none')).toEqual([]);
    db.close();
  });

  it('loads every version when a replayed commit left a record holding lower versions than the first one found', async () => {
    const db = await openLogDb('load-hole');
    // The first record (in version order) is record 6; record 4 holds versions 1..3 and 5.
    const records: LogRecord[] = [
      { from: 1, to: 4, events: [ev('s', 1, 1), ev('s', 2, 2), ev('s', 3, 3), ev('s', 5, 4)], heads: [] },
      { from: 5, to: 6, events: [ev('s', 4, 5)], heads: [] },
      { from: 7, to: 8, events: [ev('s', 6, 7), ev('s', 7, 8)], heads: [] },
    ];
    for (const r of records) await db.put('log', finalize(r));
    const load = async (after = 0) =>
      (await loadStream(db.transaction('log').store, 's', after)).map((e) => e.version);
    expect(await load()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(await load(3)).toEqual([4, 5, 6, 7]);
    expect(await load(5)).toEqual([6, 7]);
    db.close();
  });
});
