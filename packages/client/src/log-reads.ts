import type { EventFilter } from '@edgelog/core';
import type { IDBPObjectStore, StoreNames } from 'idb';
import type { LogRecord, LogSchema, StoredEvent, StoredRecord } from './db.ts';
import { decodeRecord, eventsOf } from './db.ts';

// Reads of the local log by key and by stream: the tail, a stream's version, its records and
// events, a window of its versions. LocalLog, the sync store and the rebaser share them.

export type LogStore = IDBPObjectStore<LogSchema, StoreNames<LogSchema>[], 'log', 'readwrite' | 'readonly'>;

/** The last local position, i.e. the last log key (0 when empty). */
export async function tailKey(log: LogStore): Promise<number> {
  const cursor = await log.openKeyCursor(null, 'prev');
  return cursor ? cursor.key : 0;
}

const streamRange = (stream: string) => IDBKeyRange.bound([stream, 0], [stream, Number.POSITIVE_INFINITY]);

/** A stream's version: the highest `heads` key of it (0 when it has no events). */
export async function streamVersion(log: LogStore, stream: string): Promise<number> {
  const cursor = await log.index('heads').openKeyCursor(streamRange(stream), 'prev');
  return cursor ? (cursor.key as [string, number])[1] : 0;
}

/** The records holding a stream's events (each once). */
export async function streamRecords(log: LogStore, stream: string): Promise<LogRecord[]> {
  return (await log.index('heads').getAll(streamRange(stream))).map(decodeRecord);
}

/** The events of `stream` after version `after` in `records`, in version order. */
function collect(records: readonly StoredRecord[], stream: string, after: number): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const r of records)
    for (const e of eventsOf(r)) if (e.stream === stream && e.version > after) out.push(e);
  return out.sort((x, y) => x.version - y.version);
}

/** The stored events of a stream after version `after` (default: all), in version order. */
export async function loadStream(log: LogStore, stream: string, after = 0): Promise<StoredEvent[]> {
  // A record's `heads` key is the highest version of the stream in it: records wholly at or
  // before `after` are never read.
  const range = IDBKeyRange.bound([stream, after + 1], [stream, Number.POSITIVE_INFINITY]);
  const heads = log.index('heads');
  // Reading through an index fetches each record on its own; a key range of the log is one
  // sequential scan. The stream's first and last records (in version order) bound the scan;
  // each event takes one local position, so when the range holds at most twice as many
  // positions as the events wanted, the scan reads at most as many other events as the
  // stream's own (a stream of single-event appends). The bounds come from two key cursors,
  // not from every key of the range (listing 10,000 keys cost more than the scan's savings).
  const [first, last] = await Promise.all([heads.openKeyCursor(range), heads.openKeyCursor(range, 'prev')]);
  if (!first || !last) return [];
  const want = (last.key as [string, number])[1] - after;
  const lo = Math.min(first.primaryKey, last.primaryKey);
  const hi = Math.max(first.primaryKey, last.primaryKey);
  if (hi - lo + 1 <= 2 * want) {
    const out = collect(await log.getAll(IDBKeyRange.bound(lo, hi)), stream, after);
    // A record outside the bounds (a replayed commit's record holds lower versions than an
    // earlier one) leaves a version missing: then the index, which finds every record, decides.
    if (out.length === want && out.every((e, i) => e.version === after + i + 1)) return out;
  }
  return collect(await heads.getAll(range), stream, after);
}

const FIRST_CHUNK = 16;

/** The first records that may hold versions from `lo` on (those whose highest version is >= lo). */
export function streamWindowStart(log: LogStore, stream: string, lo: number): Promise<StoredRecord[]> {
  return log
    .index('heads')
    .getAll(IDBKeyRange.bound([stream, lo], [stream, Number.POSITIVE_INFINITY]), FIRST_CHUNK);
}

/**
 * A stream's events with versions `lo..hi`, in version order, reading only the records that
 * may hold them: in `heads` order (each record's highest version of the stream) from `lo` on,
 * in chunks, until every version of the window is found (versions are gap-free, I3). A
 * record's versions need not be contiguous (a replayed commit leaves a hole in its record), so
 * the window, not the record, decides when to stop.
 */
export async function loadWindow(
  log: LogStore,
  stream: string,
  lo: number,
  hi: number,
  first?: StoredRecord[],
): Promise<StoredEvent[]> {
  const want = hi - lo + 1;
  const slots: Array<StoredEvent | undefined> = new Array(want);
  let found = 0;
  let records = first ?? (await streamWindowStart(log, stream, lo));
  let chunk = FIRST_CHUNK;
  let seen = 0;
  for (;;) {
    let last = 0;
    for (const r of records) {
      for (const e of eventsOf(r)) {
        if (e.stream !== stream) continue;
        if (e.version > last) last = e.version;
        const i = e.version - lo;
        if (i >= 0 && i < want && slots[i] === undefined) {
          slots[i] = e;
          found++;
        }
      }
    }
    seen += records.length;
    if (found === want || records.length < chunk) break;
    // Size the next chunk from what the records so far held of the window.
    const perRecord = Math.max(1, found / seen);
    chunk = Math.min(10_000, Math.ceil((want - found) / perRecord) + 4);
    records = await log
      .index('heads')
      .getAll(IDBKeyRange.bound([stream, last], [stream, Number.POSITIVE_INFINITY], true, false), chunk);
  }
  if (found === want) return slots as StoredEvent[];
  return slots.filter((e): e is StoredEvent => e !== undefined);
}

export function matches(filter: EventFilter | undefined, e: { stream: string; type: string }): boolean {
  if (!filter) return true;
  if (filter.streamPrefix !== undefined && !e.stream.startsWith(filter.streamPrefix)) return false;
  if (filter.types !== undefined && filter.types.length > 0 && !filter.types.includes(e.type)) return false;
  return true;
}
