import type { LogDb, LogRecord, StoredEvent, StoredRecord } from './db.ts';
import { eventsOf, finalize } from './db.ts';

/**
 * A record spanning fewer local positions than this is small: an append of a few events, or a
 * live event pulled on its own. Pulled pages and batched appends are left as they are.
 */
export const COMPACT_SMALL = 100;
/** A merged record holds at most this many local positions... */
export const COMPACT_EVENTS = 500;
/** ...and at most this many UTF-16 code units of event text... */
export const COMPACT_CHARS = 256 * 1024;
/** ...and every stream in it holds at least 1/16 of its events (see `batches`). */
export const COMPACT_SHARE = 16;
const GROUPS_PER_TRANSACTION = 4;

/**
 * Merges runs of small settled records into records of up to `COMPACT_EVENTS` positions.
 *
 * IndexedDB costs per record, not per byte: a stream written by single appends, or received as
 * live events one at a time, is one record per event, and reading it costs about 20 µs per
 * record in Chromium (a 10,000-event stream: ~200 ms, against ~60 ms for the same events in
 * 100 records). Once such records are settled (every commit in them confirmed and pulled past),
 * nothing changes them any more, so the syncing tab merges them.
 *
 * What a merge keeps:
 * - the events, their local positions and versions (readers go by local position, never by
 *   record);
 * - the key of the run's last record, so the log's tail and every cached tail stay valid;
 * - every `from` of the run (an array, in the multiEntry `from` index), so the index still
 *   refuses a writer that decided from the tail any of them was written after;
 * - `li` when any merged record was local. The ids of others' events merged with local ones
 *   then join the id map: an app that appends one of them again is answered at once with the
 *   stored event, as the server would answer it.
 *
 * An id map that still names a merged record's old key finds the record that holds its events
 * now as the first record at or after that key (see LocalLog's id lookup). Pending records are
 * never merged, and a run waits while a pending record follows it: the outbox, the rebaser and
 * a push in flight rely on a pending record's key and events, and the run may go on through
 * it once it has settled.
 */
export class Compactor {
  /** Every record at or below this key is final: it is never looked at again. */
  #cursor = 0;
  /**
   * The first pending record after the cursor when the last pass ended, and the key up to
   * which the runs after it are final while it stays pending: the next pass resumes there
   * instead of reading every key after a commit that stays pending long.
   */
  #held: { pending: number; upTo: number } | undefined;
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
    // A run skipped because it changed after the scan is looked at again next time.
    let ceiling = Number.POSITIVE_INFINITY;
    try {
      const scan = await this.#start();
      for (;;) {
        const { groups, cursor, more } = await this.#scan(scan);
        // A few runs per transaction: a merge holds the log's write lock, and appends wait for
        // it (four runs of 500 single-event records: about 40 ms of reads in Chromium).
        for (let i = 0; i < groups.length && !this.#closed; i += GROUPS_PER_TRANSACTION) {
          const merged = await this.#merge(groups.slice(i, i + GROUPS_PER_TRANSACTION));
          removed += merged.removed;
          if (merged.skipped !== undefined) ceiling = Math.min(ceiling, merged.skipped - 1);
        }
        this.#cursor = Math.max(this.#cursor, Math.min(cursor, ceiling));
        if (!more || this.#closed) {
          this.#held =
            scan.firstPending === undefined
              ? undefined
              : { pending: scan.firstPending, upTo: Math.min(scan.heldUpTo, ceiling) };
          return removed;
        }
      }
    } catch (e) {
      // The database was closed (a newer version of the app opened it): nothing more to do.
      if (isGone(e)) return removed;
      throw e;
    }
  }

  /**
   * Where a pass starts: after the cursor, or after the runs behind the pending record that
   * stopped it last time, while that record is still the first pending one.
   */
  async #start(): Promise<Scan> {
    const held = this.#held;
    if (held !== undefined) {
      const first = await this.db.getKeyFromIndex(
        'log',
        'pending',
        IDBKeyRange.lowerBound(this.#cursor, true),
      );
      if (first === held.pending && held.upTo >= held.pending)
        return {
          prev: held.upTo,
          runStart: held.upTo,
          run: [],
          firstPending: first,
          pendingMet: 1,
          heldUpTo: held.upTo,
        };
    }
    return {
      prev: this.#cursor,
      runStart: this.#cursor,
      run: [],
      firstPending: undefined,
      pendingMet: 0,
      heldUpTo: 0,
    };
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
    // What closes is final up to the first pending record (the cursor moves over it), and,
    // while that record stays pending, up to the second (see #held).
    let cursor = 0;
    const close = (key: number) => {
      if (scan.run.length >= 2) groups.push([scan.run[0]!, scan.run.at(-1)!]);
      scan.run = [];
      if (scan.firstPending === undefined) cursor = key;
      else if (scan.pendingMet === 1) scan.heldUpTo = key;
    };
    for (const key of keys) {
      const span = key - scan.prev;
      if (pendingKeys.has(key)) {
        // The run before a pending record may go on through it once it has settled: it waits.
        scan.run = [];
        // After a second pending record nothing is final while the first is pending.
        scan.pendingMet++;
        if (scan.firstPending === undefined) {
          scan.firstPending = key;
          scan.heldUpTo = key;
        }
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

  /**
   * Merges the runs in one transaction, after checking that nothing changed them since the
   * scan; `skipped` is the first key of the first run that had changed.
   */
  async #merge(groups: ReadonlyArray<[number, number]>): Promise<{ removed: number; skipped?: number }> {
    const tx = this.db.transaction('log', 'readwrite');
    const done = tx.done;
    done.catch(() => undefined);
    const log = tx.store;
    let removed = 0;
    let skipped: number | undefined;
    try {
      const runs = await Promise.all(groups.map(([lo, hi]) => log.getAll(IDBKeyRange.bound(lo, hi))));
      const writes: Promise<unknown>[] = [];
      runs.forEach((stored, g) => {
        const [lo, hi] = groups[g]!;
        // Another tab may have written since the scan: only settled records are merged.
        const changed =
          stored.length < 2 ||
          stored[0]!.to !== lo ||
          stored.at(-1)!.to !== hi ||
          stored.some((r) => r.pq !== undefined || r.commits !== undefined || r.cm !== undefined);
        if (changed) {
          skipped ??= lo;
          return;
        }
        for (const batch of batches(stored)) {
          const last = batch.at(-1)!.r;
          const events: StoredEvent[] = [];
          for (const part of batch) for (const e of part.events) events.push(e);
          const merged: LogRecord = {
            from: batch.flatMap((p) => fromsOf(p.r)),
            to: last.to,
            events,
            heads: [],
          };
          if (batch.some((p) => p.r.li !== undefined)) merged.li = last.to;
          writes.push(log.delete(IDBKeyRange.bound(batch[0]!.r.to, last.to)));
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
      throw e;
    }
    return skipped === undefined ? { removed } : { removed, skipped };
  }
}

/** Where a scan of the keys is. */
interface Scan {
  /** The last key read. */
  prev: number;
  /** The keys of the run being gathered, and the key before its first. */
  run: number[];
  runStart: number;
  /** The first pending record met, if any, and how many were met. */
  firstPending: number | undefined;
  pendingMet: number;
  /** While `firstPending` stays pending, the runs after it are final up to here. */
  heldUpTo: number;
}

/** A record of a run, with its events and the positions it spans. */
interface Part {
  r: StoredRecord;
  events: StoredEvent[];
  span: number;
}

/**
 * Splits a run's records into the consecutive batches worth merging: within the position and
 * text bounds, and such that every stream in a batch holds at least 1/`COMPACT_SHARE` of its
 * events. Reading a stream costs about 20 µs per record and 1 to 2 µs per event decoded in
 * Chromium: a stream with one event among 500 others' would read 25 times slower from the
 * merged record than from its own; with 1/16 of them, no slower. So the record of a stream
 * written alone, or of a few streams written in turns, is merged, and a run of many streams'
 * events one each (a log of many small aggregates) stays as it is. Records in no batch stay.
 */
function batches(records: readonly StoredRecord[]): Part[][] {
  const parts = records.map((r): Part => ({ r, events: eventsOf(r), span: r.to - fromsOf(r)[0]! + 1 }));
  const out: Part[][] = [];
  for (let i = 0; i < parts.length; ) {
    // The fewest events any stream holds in records i..j, kept with how many streams hold each count.
    const counts = new Map<string, number>();
    const holding: number[] = [];
    let fewest = Number.POSITIVE_INFINITY;
    let events = 0;
    let positions = 0;
    let chars = 0;
    let end = -1;
    for (let j = i; j < parts.length; j++) {
      const { r, span } = parts[j]!;
      if (j > i && (positions + span > COMPACT_EVENTS || chars + r.ev.length > COMPACT_CHARS)) break;
      positions += span;
      chars += r.ev.length;
      for (const e of parts[j]!.events) {
        const c = counts.get(e.stream) ?? 0;
        counts.set(e.stream, c + 1);
        if (c > 0) holding[c]!--;
        holding[c + 1] = (holding[c + 1] ?? 0) + 1;
        if (c === 0) fewest = 1;
        else if (c === fewest && holding[c] === 0) fewest = c + 1;
      }
      events += parts[j]!.events.length;
      if (j > i && events <= COMPACT_SHARE * fewest) end = j;
    }
    if (end < 0) {
      i++;
      continue;
    }
    out.push(parts.slice(i, end + 1));
    i = end + 1;
  }
  return out;
}

/** A record's `from` values: its own first, then those of the records merged into it. */
const fromsOf = (r: StoredRecord): number[] => (Array.isArray(r.from) ? r.from : [r.from]);

const isGone = (e: unknown) => {
  const name = (e as { name?: unknown } | null)?.name;
  return name === 'InvalidStateError' || name === 'AbortError';
};
