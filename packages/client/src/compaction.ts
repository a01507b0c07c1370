import type { LogDb, LogRecord, StoredEvent, StoredRecord } from './db.ts';
import { eventsOf, finalize } from './db.ts';

/**
 * A record spanning fewer local positions than this is small: an append of a few events, or a
 * live event pulled on its own. Pulled pages and batched appends are left as they are.
 */
export const COMPACT_SMALL = 100;
/** A merged record holds at most this many local positions... */
export const COMPACT_EVENTS = 500;
/** ...and at most this many UTF-16 code units of event text. */
export const COMPACT_CHARS = 256 * 1024;

/**
 * Merges runs of small settled records into records of up to `COMPACT_EVENTS` events.
 *
 * IndexedDB costs per record, not per byte: a stream written by single appends, or received as
 * live events one at a time, is one record per event, and reading it costs about 20 µs per
 * record in Chromium (a 10,000-event stream: ~200 ms, against ~60 ms for the same events in
 * 100 records). Once such records are settled (every commit in them confirmed and pulled past),
 * nothing changes them any more, so the syncing tab merges them.
 *
 * What a merge keeps: the events, their local positions and versions (readers go by local
 * position, never by record); the key of the run's last record, so the log's tail and every
 * cached tail stay valid; the run's first `from`, so the `from` index still refuses a writer
 * that decided from a stale tail; `li` when any merged record was local. An id map that still
 * points at a merged record's old key finds the record that holds it now as the first record
 * at or after that key (see LocalLog's id lookup). Pending records and the records around them
 * are never merged: a run stops at a pending record, whose key and events the outbox, the
 * rebaser and a push in flight rely on.
 */
export class Compactor {
  /** Every record at or below this key is final: it is never looked at again. */
  #cursor = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<number> | undefined;
  #closed = false;

  constructor(
    private readonly db: LogDb,
    private readonly delayMs = 250,
    /** Keys read per scan step (tests make it small). */
    private readonly keyPage = 10_000,
  ) {}

  /** Asks for a pass after `delayMs` (once for every request until then). */
  schedule(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.compact().catch(() => undefined);
    }, this.delayMs);
  }

  /** Runs a pass (after the one running, if any); resolves with the number of records removed. */
  compact(): Promise<number> {
    const previous = this.#running ?? Promise.resolve(0);
    const next = previous.catch(() => 0).then(() => (this.#closed ? 0 : this.#pass()));
    this.#running = next;
    void next.finally(() => {
      if (this.#running === next) this.#running = undefined;
    });
    return next;
  }

  /** Stops scheduling and waits for a pass that is running. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  async #pass(): Promise<number> {
    let removed = 0;
    const scan: Scan = { prev: this.#cursor, final: true, run: [], runStart: this.#cursor };
    for (;;) {
      const { groups, cursor, more } = await this.#scan(scan);
      if (groups.length > 0) removed += await this.#merge(groups);
      this.#cursor = Math.max(this.#cursor, cursor);
      if (!more || this.#closed) return removed;
    }
  }

  /**
   * The runs worth merging among the next page of keys after `scan.prev`, found from keys
   * alone: a record spans its key minus the key before it (positions removed since only make it
   * look larger). `scan` carries a run still open at the end of the page into the next.
   */
  async #scan(scan: Scan): Promise<{ groups: Array<[number, number]>; cursor: number; more: boolean }> {
    const tx = this.db.transaction('log', 'readonly');
    const [keys, pending] = await Promise.all([
      tx.store.getAllKeys(IDBKeyRange.lowerBound(scan.prev, true), this.keyPage),
      tx.store.index('pending').getAllKeys(),
    ]);
    const pendingKeys = new Set(pending);
    const groups: Array<[number, number]> = [];
    // The cursor moves over what is final: runs closed and large records, up to the first
    // pending record (the runs after it are merged too, and looked at again once it has settled).
    let cursor = 0;
    const close = (key: number) => {
      if (scan.run.length >= 2) groups.push([scan.run[0]!, scan.run.at(-1)!]);
      scan.run = [];
      if (scan.final) cursor = key;
    };
    for (const key of keys) {
      const span = key - scan.prev;
      if (pendingKeys.has(key)) {
        // The run before a pending record may go on through it once it has settled: it waits.
        // (Merged now, it would be a small record between a pending one and the one before.)
        scan.run = [];
        scan.final = false;
      } else if (span >= COMPACT_SMALL) {
        close(key);
      } else {
        if (scan.run.length === 0) scan.runStart = scan.prev;
        scan.run.push(key);
        if (key - scan.runStart >= COMPACT_EVENTS) close(key);
      }
      scan.prev = key;
    }
    const more = keys.length === this.keyPage;
    // At the log's tail, a run that spans as many positions as a large record is merged now (it
    // becomes one, so it is never merged again); a shorter one waits for more records.
    if (!more && scan.run.length > 0 && scan.prev - scan.runStart >= COMPACT_SMALL) close(scan.prev);
    return { groups, cursor, more };
  }

  /** Merges the runs in one transaction, after checking that nothing changed them since the scan. */
  async #merge(groups: ReadonlyArray<[number, number]>): Promise<number> {
    const tx = this.db.transaction('log', 'readwrite');
    const done = tx.done;
    done.catch(() => undefined);
    const log = tx.store;
    let removed = 0;
    try {
      const runs = await Promise.all(groups.map(([lo, hi]) => log.getAll(IDBKeyRange.bound(lo, hi))));
      const writes: Promise<unknown>[] = [];
      runs.forEach((stored, g) => {
        const [lo, hi] = groups[g]!;
        if (stored.length < 2 || stored[0]!.to !== lo || stored.at(-1)!.to !== hi) return;
        // Another tab may have written since the scan: only settled records are merged.
        if (stored.some((r) => r.pq !== undefined || r.commits !== undefined || r.cm !== undefined)) return;
        for (const batch of batches(stored)) {
          if (batch.length < 2) continue;
          const first = batch[0]!;
          const last = batch.at(-1)!;
          const events: StoredEvent[] = [];
          for (const r of batch) for (const e of eventsOf(r)) events.push(e);
          const merged: LogRecord = { from: first.from, to: last.to, events, heads: [] };
          if (batch.some((r) => r.li !== undefined)) merged.li = last.to;
          writes.push(log.delete(IDBKeyRange.bound(first.to, last.to)));
          writes.push(log.add(finalize(merged)));
          removed += batch.length - 1;
        }
      });
      tx.commit();
      await Promise.all(writes);
      await done;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // Already finished.
      }
      // The database was closed (a newer version of the app opened it): nothing was merged.
      if (isGone(e)) return 0;
      throw e;
    }
    return removed;
  }
}

/** Where a scan of the keys is. */
interface Scan {
  /** The last key read. */
  prev: number;
  /** No pending record was met so far: what closes now is final. */
  final: boolean;
  /** The keys of the run being gathered. */
  run: number[];
  /** The key before the run's first. */
  runStart: number;
}

/** Splits a run's records into consecutive batches within the position and text bounds. */
function batches(records: readonly StoredRecord[]): StoredRecord[][] {
  const out: StoredRecord[][] = [];
  let batch: StoredRecord[] = [];
  let positions = 0;
  let chars = 0;
  for (const r of records) {
    const span = r.to - r.from + 1;
    if (batch.length > 0 && (positions + span > COMPACT_EVENTS || chars + r.ev.length > COMPACT_CHARS)) {
      out.push(batch);
      batch = [];
      positions = 0;
      chars = 0;
    }
    batch.push(r);
    positions += span;
    chars += r.ev.length;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

const isGone = (e: unknown) => {
  const name = (e as { name?: unknown } | null)?.name;
  return name === 'InvalidStateError' || name === 'AbortError';
};
