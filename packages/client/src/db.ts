import type { ExpectedVersion, WireError } from '@edgelog/core';
import type { DBSchema, IDBPDatabase } from 'idb';
import { openDB } from 'idb';

/** An event as the local log stores it. `lp` is its local position; `position` the server's. */
export interface StoredEvent {
  id: string;
  stream: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: Record<string, unknown>;
  version: number;
  lp: number;
  position?: number;
  recordedAt: string;
}

/** A command remembered with its commit so that a conflict can be replayed through the decider. */
export interface RememberedCommand {
  decider: string;
  command: unknown;
}

/** One local append, as it will be pushed. Its events are `events[start .. start + count)` of the record. */
export interface CommitInfo {
  commitId: string;
  stream: string;
  expectedVersion?: ExpectedVersion;
  /** The expected version it was appended with, once marked stale (commit-chain.ts). */
  staleFrom?: ExpectedVersion;
  /** Its events' ids, in order; they live in the same record. */
  ids: string[];
  command?: RememberedCommand;
  /** Outbox order; a replayed commit keeps the place of the one it replaces. */
  seq: number;
  /** The server committed it; the record stays in the outbox until a pull has covered it. */
  acked?: true;
}

/**
 * One record of the local log: one local append batch (a group commit), one pulled page,
 * or one rebase. IndexedDB costs per record, so events travel in batches. The key `to` is
 * the last local position the record was given (so the next position is the last key + 1,
 * and the record holding position p is the first with key >= p); removed events leave gaps.
 * `pq` is present while the record holds commits a pull has not yet covered (the outbox
 * index); `pn` counts those the server has not acknowledged (the `unacked` index: status).
 */
export interface LogRecord {
  /**
   * The tail this record was written after, plus one (unique: the `from` index). Every write
   * that adds a record, or changes stored versions in place, adds one at the tail it read, so
   * an append that decided from a cached tail and versions fails on this index if anything
   * moved since, instead of reading the tail and the versions again to verify them.
   * A record the compactor merged holds the `from` of every record it replaced (the first is
   * its own), so that a writer deciding from any of their tails still fails (version 9 makes
   * the index multiEntry).
   */
  from: number | number[];
  to: number;
  events: StoredEvent[];
  /**
   * Ids of locally appended events: written by databases before version 6 (the per-event
   * unique `ids` index); the events themselves are the source of truth now.
   */
  ids?: string[];
  /**
   * Set (to `to`) on records of local appends and replays, never on pulled pages: the `local`
   * index finds the records whose event ids a local append must not repeat (one index entry
   * per record, not per event; see LocalLog's id map).
   */
  li?: number;
  commits?: CommitInfo[];
  pq?: number;
  /** Commit ids the server has not acknowledged: written by databases before version 6. */
  pc?: string[];
  /** How many of the record's commits the server has not acknowledged (absent when none). */
  pn?: number;
  /**
   * `[stream, highest version of it in this record]` per stream: the `heads` index finds a
   * stream's records and its version (the highest key) without a record per stream to keep.
   */
  heads: Array<[string, number]>;
}

/**
 * A log record as stored (version 7 on): its events as one JSON text. IndexedDB clones a
 * value object by object, property by property; one string is one copy, and JSON.parse reads
 * it back several times faster than structured clone rebuilds the objects. Events are JSON
 * data anyway (they are pushed as JSON), so nothing is lost that the server would keep.
 * Version 8 writes the text packed (see `packEvents`); version 7 texts (a JSON array) still read.
 */
export type StoredRecord = Omit<LogRecord, 'events'> & {
  ev: string;
  /**
   * Version 8: the record's commits as one JSON text (`packCommits`), when none of them
   * remembers a command (commands are the app's values: they keep their structured clone in
   * `commits`).
   */
  cm?: string;
};

/** An event in a packed text: short keys, and what it shares with the event before it left out. */
interface PackedEvent {
  i: string;
  t: string;
  d?: unknown;
  /** Version; absent when it is the previous event's + 1 in the same stream. */
  v?: number;
  /** Local position; absent when it is the previous event's + 1. */
  l?: number;
  /** Stream, when it is not the record's. */
  s?: string;
  /** `recordedAt`, when it is not the record's. */
  r?: string;
  /** schemaVersion, when not 1. */
  n?: number;
  /** metadata, when not empty. */
  m?: Record<string, unknown>;
  /** Server position; 0 means the previous event's + 1. */
  p?: number;
}

/** A packed text: the record's stream and recordedAt (its first event's), then its events. */
interface Packed {
  s: string;
  r: string;
  e: PackedEvent[];
}

const hasKeys = (o: object) => {
  for (const _ in o) return true;
  return false;
};

/**
 * IndexedDB's cost grows with the bytes of a value (in Chromium a 16 KB record costs about half
 * as much again as a 200-byte one): a record's events are stored with short keys and without
 * what the record's events share (stream, recordedAt, schemaVersion 1, empty metadata,
 * consecutive versions, local and server positions), less than half the text of plain JSON.
 */
export function packEvents(events: readonly StoredEvent[]): string {
  const first = events[0];
  if (first === undefined) return '[]';
  const out: PackedEvent[] = new Array(events.length);
  let prev: StoredEvent | undefined;
  for (let k = 0; k < events.length; k++) {
    const e = events[k]!;
    const o: PackedEvent = { i: e.id, t: e.type, d: e.data };
    if (prev === undefined || prev.stream !== e.stream || e.version !== prev.version + 1) o.v = e.version;
    if (prev === undefined || e.lp !== prev.lp + 1) o.l = e.lp;
    if (e.stream !== first.stream) o.s = e.stream;
    if (e.recordedAt !== first.recordedAt) o.r = e.recordedAt;
    if (e.schemaVersion !== 1) o.n = e.schemaVersion;
    if (e.metadata !== undefined && hasKeys(e.metadata)) o.m = e.metadata;
    if (e.position !== undefined)
      o.p = prev?.position !== undefined && e.position === prev.position + 1 ? 0 : e.position;
    out[k] = o;
    prev = e;
  }
  const packed: Packed = { s: first.stream, r: first.recordedAt, e: out };
  return JSON.stringify(packed);
}

/** Reads a record's text: packed (version 8) or a plain JSON array (version 7). */
export function unpackEvents(text: string): StoredEvent[] {
  const parsed = JSON.parse(text) as Packed | StoredEvent[];
  if (Array.isArray(parsed)) return parsed;
  const list = parsed.e;
  const out: StoredEvent[] = new Array(list.length);
  let prev: StoredEvent | undefined;
  for (let k = 0; k < list.length; k++) {
    const c = list[k]!;
    const e: StoredEvent = {
      id: c.i,
      stream: c.s ?? parsed.s,
      type: c.t,
      schemaVersion: c.n ?? 1,
      data: c.d,
      metadata: c.m ?? {},
      version: c.v ?? prev!.version + 1,
      lp: c.l ?? prev!.lp + 1,
      recordedAt: c.r ?? parsed.r,
    };
    if (c.p !== undefined) e.position = c.p === 0 ? prev!.position! + 1 : c.p;
    out[k] = e;
    prev = e;
  }
  return out;
}

/** A commit in a packed text: its ids as `[index, count]` of the record's events when they are a run of them. */
type PackedCommit = Omit<CommitInfo, 'ids'> & { ids?: string[]; at?: [number, number] };

/**
 * A record's commits as one JSON text, each one's ids (a copy of its events' ids) as a range
 * of the record's events: a 100-event append stored its ids twice, and 100 concurrent appends
 * cloned 200 objects. Undefined when a commit remembers a command (see `StoredRecord.cm`).
 */
export function packCommits(
  commits: readonly CommitInfo[],
  events: readonly StoredEvent[],
): string | undefined {
  let index: Map<string, number> | undefined;
  const out: PackedCommit[] = [];
  for (const c of commits) {
    if (c.command !== undefined) return undefined;
    const first = c.ids[0];
    if (first !== undefined) {
      index ??= new Map(events.map((e, i) => [e.id, i]));
      const k = index.get(first);
      if (k !== undefined && c.ids.every((id, j) => events[k + j]?.id === id)) {
        const { ids: _ids, ...rest } = c;
        out.push({ ...rest, at: [k, c.ids.length] });
        continue;
      }
    }
    out.push(c);
  }
  return JSON.stringify(out);
}

export function unpackCommits(text: string, events: readonly StoredEvent[]): CommitInfo[] {
  return (JSON.parse(text) as PackedCommit[]).map(({ at, ...c }) =>
    at ? { ...c, ids: events.slice(at[0], at[0] + at[1]).map((e) => e.id) } : (c as CommitInfo),
  );
}

/** A stored record with its events parsed. */
export function decodeRecord(r: StoredRecord): LogRecord {
  const { ev, cm, ...rest } = r;
  const events = unpackEvents(ev);
  return cm === undefined ? { ...rest, events } : { ...rest, events, commits: unpackCommits(cm, events) };
}

/** The events of a record, stored (JSON text) or decoded. */
export function eventsOf(r: StoredRecord | LogRecord): StoredEvent[] {
  return 'events' in r && Array.isArray(r.events) ? r.events : unpackEvents((r as StoredRecord).ev);
}

export function encodeRecord(rec: LogRecord): StoredRecord {
  const { events, commits, ...rest } = rec;
  const ev = packEvents(events);
  if (commits === undefined) return { ...rest, ev };
  const cm = packCommits(commits, events);
  return cm === undefined ? { ...rest, commits, ev } : { ...rest, ev, cm };
}

/**
 * The record of a local append group, encoded directly: what `finalize` makes of it, without
 * searching for what the append knows already (every commit is open and holds the run
 * `runs[i]` = `[index, count]` of the events). Commits that remember a command keep their
 * structured clone (see `StoredRecord.cm`) and go through `finalize`.
 */
export function appendRecord(
  from: number,
  to: number,
  events: StoredEvent[],
  commits: CommitInfo[],
  runs: ReadonlyArray<[number, number]>,
): StoredRecord {
  if (commits.length === 0 || commits.some((c) => c.command !== undefined))
    return finalize({ from, to, li: to, events, commits, heads: [] });
  const packed: PackedCommit[] = new Array(commits.length);
  for (let i = 0; i < commits.length; i++) {
    const { ids: _ids, ...rest } = commits[i]!;
    packed[i] = { ...rest, at: runs[i]! };
  }
  return {
    from,
    to,
    li: to,
    heads: runHeads(events, commits, runs),
    pq: to,
    pn: commits.length,
    ev: packEvents(events),
    cm: JSON.stringify(packed),
  };
}

export interface Rejection {
  commitId: string;
  stream: string;
  error: WireError;
  events: StoredEvent[];
  command?: RememberedCommand;
  at: string;
}

export interface SyncMeta {
  key: 'sync';
  /** Last server position applied to the local log. */
  pulled: number;
  /** The server head when last seen. */
  head: number;
}

/** A client projection's row: `p` is `name@version`, `k` the row key. */
export interface ProjectionRow {
  p: string;
  k: string;
  state: unknown;
}

/** Where a projection version has got to, in local positions, and what it parked. */
export interface Checkpoint {
  p: string;
  lp: number;
  parked: Array<{ eventId: string; lp: number; message: string }>;
  /** Set when a projection with the `'stop'` policy threw on this event: it folds nothing more. */
  stopped?: { eventId: string; lp: number; message: string };
}

/** An aggregate snapshot: the decider's state after the stream's confirmed prefix up to `version`. */
export interface SnapshotRecord {
  /** `<decider>:<stream>@<stateVersion>` */
  key: string;
  stream: string;
  version: number;
  stateVersion: number;
  state: unknown;
}

export interface LogSchema extends DBSchema {
  log: {
    key: number;
    value: StoredRecord;
    indexes: { local: number; from: number; pending: number; unacked: number; heads: [string, number] };
  };
  rejections: { key: string; value: Rejection };
  meta: { key: string; value: SyncMeta };
  rows: { key: [string, string]; value: ProjectionRow };
  checkpoints: { key: string; value: Checkpoint };
  snapshots: { key: string; value: SnapshotRecord };
}

export type LogDb = IDBPDatabase<LogSchema>;

export const DB_VERSION = 9;

/**
 * The durability of the log's write transactions (IndexedDB's hint). Chromium 121 and later
 * treat `'default'` as `'relaxed'`: `complete` fires once the data is handed to the operating
 * system, so a resolved write survives a reload, a closed tab, a killed worker or a crashed
 * browser, but not an OS crash or a power loss in the seconds before the OS writes it out.
 * `'strict'` waits for the flush to disk (about 4 times slower per transaction in Chromium).
 */
export type Durability = 'default' | 'strict' | 'relaxed';

/** Sets `pn` (and `pq`) from the record's commits; a record without open commits leaves the outbox. */
export function withUnacked<R extends Omit<LogRecord, 'heads' | 'events'>>(rec: R): R {
  if (!rec.commits || rec.commits.length === 0) {
    delete rec.commits;
    delete rec.pq;
    delete rec.pc;
    delete rec.pn;
    return rec;
  }
  rec.pq = rec.to;
  delete rec.pc;
  const open = rec.commits.reduce((n, c) => (c.acked ? n : n + 1), 0);
  if (open > 0) rec.pn = open;
  else delete rec.pn;
  return rec;
}

/** `headsOf` for a record of whole commits, from each commit's last event (one per run). */
function runHeads(
  events: readonly StoredEvent[],
  commits: readonly CommitInfo[],
  runs: ReadonlyArray<[number, number]>,
): Array<[string, number]> {
  if (commits.length === 1) return [[commits[0]!.stream, events[runs[0]![0] + runs[0]![1] - 1]!.version]];
  const heads = new Map<string, number>();
  commits.forEach((c, i) => {
    const [at, n] = runs[i]!;
    const v = events[at + n - 1]!.version;
    if (v > (heads.get(c.stream) ?? 0)) heads.set(c.stream, v);
  });
  return [...heads];
}

/** Computes `heads` from the record's events. */
export function headsOf(events: readonly StoredEvent[]): Array<[string, number]> {
  const heads = new Map<string, number>();
  for (const e of events) if (e.version > (heads.get(e.stream) ?? 0)) heads.set(e.stream, e.version);
  return [...heads];
}

/** Brings a record's derived fields (`heads`, outbox fields) up to date and encodes it for storing. */
export function finalize(rec: LogRecord): StoredRecord {
  rec.heads = headsOf(rec.events);
  return encodeRecord(withUnacked(rec));
}

/** Opens (and upgrades, rung by rung) the local log of one store. */
export function openLogDb(name: string, onBlocking?: () => void): Promise<LogDb> {
  let db: LogDb | undefined;
  const opening = openDB<LogSchema>(name, DB_VERSION, {
    // A newer version of the app (another tab) wants to upgrade: step aside rather than block it.
    blocking() {
      db?.close();
      onBlocking?.();
    },
    async upgrade(db, oldVersion, _newVersion, tx) {
      if (oldVersion < 1) {
        const log = db.createObjectStore('log', { keyPath: 'to' });
        // Dropped again at version 6 (see below).
        (log as unknown as IDBObjectStore).createIndex('ids', 'ids', { unique: true, multiEntry: true });
        log.createIndex('pending', 'pq');
        (db as unknown as IDBPDatabase).createObjectStore('streams', { keyPath: 'stream' });
        db.createObjectStore('rejections', { keyPath: 'commitId' });
        db.createObjectStore('meta', { keyPath: 'key' });
      }
      if (oldVersion < 2) {
        db.createObjectStore('rows', { keyPath: ['p', 'k'] });
        db.createObjectStore('checkpoints', { keyPath: 'p' });
      }
      if (oldVersion < 3) {
        const log = tx.objectStore('log');
        // Replaced at version 6 (see below).
        (log as unknown as IDBObjectStore).createIndex('unacked', 'pc', { multiEntry: true });
        for (let c = await log.index('pending').openCursor(); c; c = await c.continue()) {
          await c.update(withUnacked(c.value));
        }
      }
      if (oldVersion < 4) {
        // Streams are found through the log's `heads` index; the per-stream records go.
        const log = tx.objectStore('log');
        log.createIndex('heads', 'heads', { multiEntry: true });
        for (let c = await log.openCursor(); c; c = await c.continue())
          await c.update(finalize(c.value as unknown as LogRecord));
        (db as unknown as IDBPDatabase).deleteObjectStore('streams');
      }
      if (oldVersion < 5) {
        db.createObjectStore('snapshots', { keyPath: 'key' });
      }
      if (oldVersion < 6) {
        // One `local` index entry per local record replaces the unique multiEntry `ids` index
        // (one entry per event): idempotency is checked against the records' events.
        const log = tx.objectStore('log');
        const raw = log as unknown as { indexNames: DOMStringList; deleteIndex(name: string): void };
        if (raw.indexNames.contains('ids')) raw.deleteIndex('ids');
        // `unacked` had an entry per open commit; now one per record, keyed by how many.
        if (raw.indexNames.contains('unacked')) raw.deleteIndex('unacked');
        log.createIndex('unacked', 'pn');
        log.createIndex('local', 'li');
        // Every record starts at the tail it was written after: a writer that decided from a
        // stale tail (another tab or the sync engine wrote since) collides here and retries.
        log.createIndex('from', 'from', { unique: true });
        for (let c = await log.openCursor(); c; c = await c.continue()) {
          const raw = c.value as StoredRecord | LogRecord;
          if (raw.ids === undefined && raw.pc === undefined && raw.pq === undefined) continue;
          // Records the version 4 rung rewrote are encoded (their commits may be packed).
          const rec = 'ev' in raw && typeof raw.ev === 'string' ? decodeRecord(raw) : (raw as LogRecord);
          if (rec.ids !== undefined) rec.li = rec.to;
          delete rec.ids;
          await c.update(encodeRecord(withUnacked(rec)));
        }
      }
      if (oldVersion < 7) {
        // Events move into one JSON text per record (see StoredRecord).
        const log = tx.objectStore('log');
        for (let c = await log.openCursor(); c; c = await c.continue()) {
          const rec = c.value as StoredRecord | LogRecord;
          if ('events' in rec && Array.isArray(rec.events)) await c.update(encodeRecord(rec));
        }
      }
      // Version 8 packs the text (see packEvents). Version 7 texts read as they are and are
      // packed when rewritten; the bump keeps a tab of an older app, which cannot read packed
      // texts, from opening the database.
      if (oldVersion < 9) {
        // Merged records (compaction.ts) keep every `from` they replace: the index becomes
        // multiEntry (a plain number is still one entry). The bump also keeps out older tabs,
        // whose id lookup expects every local record to keep its key.
        const log = tx.objectStore('log');
        const raw = log as unknown as { indexNames: DOMStringList; deleteIndex(name: string): void };
        if (raw.indexNames.contains('from')) raw.deleteIndex('from');
        log.createIndex('from', 'from', { unique: true, multiEntry: true });
      }
    },
  });
  return opening.then((opened) => {
    db = opened;
    return opened;
  });
}

/**
 * Resolves when `tx` commits; rejects with the first failed request's error (the transaction
 * aborts after it) or the transaction's own: idb's `done`, without its wrappers.
 */
export function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = (e) => reject((e.target as IDBRequest | null)?.error ?? tx.error ?? abortError());
    tx.onabort = () => reject(tx.error ?? abortError());
  });
}

/** A plain request's result as a promise (idb's wrapper, without its proxy). */
export function requested<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

const abortError = () => new DOMException('the transaction was aborted', 'AbortError');

/** Runs `fn` in `tx`; a throw aborts the transaction (IndexedDB would commit the requests made so far). */
export async function abortOnThrow<T>(tx: { abort(): void }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    try {
      tx.abort();
    } catch {
      // Already finished or aborted.
    }
    throw e;
  }
}
