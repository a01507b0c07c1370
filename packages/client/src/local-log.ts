import type { EventFilter, ExpectedVersion, Limits } from '@edgelog/core';
import { randomId, scanBudget } from '@edgelog/core';
import type { IDBPTransaction, StoreNames } from 'idb';
import { unwrap, wrap } from 'idb';
import type { CommitInfo, Durability, LogDb, LogSchema, RememberedCommand, StoredEvent } from './db.ts';
import { abortOnThrow, appendRecord, committed, eventsOf, requested } from './db.ts';
import { ClientError, idempotencyConflict, streamNotFound } from './errors.ts';
import {
  type LogStore,
  loadStream,
  loadWindow,
  matches,
  streamVersion,
  streamWindowStart,
  tailKey,
} from './log-reads.ts';
import { ProjectionRunner } from './projections.ts';
import { checkExpectedVersion, type ValidEvent, validateAppend } from './validate.ts';

export interface LocalAppendOptions {
  expectedVersion?: ExpectedVersion;
  /** The command that produced the events, replayed through its decider on conflict. */
  command?: RememberedCommand;
  /**
   * Every id was made by the worker just now (core's `randomId`, a UUIDv7), so none can be stored
   * already and the idempotency lookup is skipped. Ids given by the app are always checked.
   */
  freshIds?: boolean;
  /**
   * An upper bound of the length of the events' JSON text, when the caller has one (the page's
   * message that carried them): an append this small is under every size limit without
   * serialising it again.
   */
  textBound?: number;
}

export interface LocalAppendResult {
  /** The stream's local version after the append. */
  version: number;
  /** Local positions of the events, in order. */
  positions: number[];
  commitId: string;
  /** The local time stamped on the events until the server confirms them. */
  recordedAt: string;
}

export interface ReadOptions {
  from?: number;
  direction?: 'forward' | 'backward';
  limit?: number;
}

interface Job {
  stream: string;
  events: ValidEvent[];
  options: LocalAppendOptions;
  resolve: (r: LocalAppendResult) => void;
  reject: (e: unknown) => void;
}

type Tx = IDBPTransaction<LogSchema, StoreNames<LogSchema>[], 'readwrite'>;

const MAX_GROUP = 1000;
/** Commits of one record get consecutive outbox slots under the record's key. */
export const SEQ_SLOTS = 1024;
const READ_BATCH = 64;

const newId = randomId;
/** The stores a write touches: the log and, when there are projections, their rows. */
export const writeScope = (projections: ProjectionRunner): StoreNames<LogSchema>[] =>
  projections.active ? ['log', 'rows', 'checkpoints'] : ['log'];

class StaleCache extends Error {}

const isConstraintError = (e: unknown) => (e as { name?: unknown } | null)?.name === 'ConstraintError';

/**
 * The local event log in IndexedDB. Appends are validated, checked against the local stream
 * version and stored as pending in one transaction; concurrent appends share a transaction
 * and a record (group commit), each still checked against the version its predecessors left.
 */
export class LocalLog {
  readonly #queue: Job[] = [];
  /** The log tail and stream versions as this worker last wrote them (see #commitGroup). */
  #cache: { tail: number; versions: Map<string, number>; complete?: true } | undefined;
  /**
   * Every local event id stored up to log position `tail`, with the key of its record; built
   * on the first append that brings app-given ids, caught up inside each such append's
   * transaction (the serialisation point between tabs), so it never misses a stored id.
   */
  #ids: { map: Map<string, number>; tail: number } | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(
    readonly db: LogDb,
    readonly limits: Limits,
    /** Called after every committed write with the new tail position. */
    private readonly onWrite: (tail: number) => void,
    private readonly projections: ProjectionRunner = new ProjectionRunner([]),
    private readonly now: () => string = () => new Date().toISOString(),
    /** The durability hint of the append transactions (see `Durability`). */
    private readonly durability: Durability = 'default',
  ) {}

  append(
    stream: string,
    events: readonly unknown[],
    options: LocalAppendOptions = {},
  ): Promise<LocalAppendResult> {
    if (this.#closed) return Promise.reject(new ClientError('Closed', 'the client is closed'));
    let valid: ValidEvent[];
    try {
      valid = validateAppend(stream, events, this.limits, options.freshIds === true, options.textBound);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<LocalAppendResult>((resolve, reject) => {
      this.#queue.push({ stream, events: valid, options, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /**
   * Reads the tail once: an empty log means every stream is at version 0, so the first
   * appends decide without reading (their records' `from` still catches any other writer).
   */
  async warm(): Promise<void> {
    const tail = await tailKey(this.db.transaction('log', 'readonly').store);
    if (tail === 0 && this.#cache === undefined) this.#cache = { tail, versions: new Map(), complete: true };
  }

  /** Forgets cached versions: another writer (a tab, the sync engine) changed the log. */
  invalidate(): void {
    this.#cache = undefined;
  }

  /** Resolves once every append accepted so far is committed (or refused). */
  async idle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.idle();
  }

  async #flush(): Promise<void> {
    // Let appends issued in the same tick join the first group.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0) {
        const jobs = this.#queue.splice(0, MAX_GROUP);
        try {
          try {
            await this.#commitGroup(jobs);
          } catch (e) {
            if (!(e instanceof StaleCache)) throw e;
            this.invalidate();
            await this.#commitGroup(jobs);
          }
        } catch (e) {
          for (const j of jobs) j.reject(e);
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Brings the id map up to the log's tail inside the transaction `log` belongs to: the first
   * time from every local record, then from the local records written after the map's tail
   * (by this worker, another tab or a replay). Records are only ever added at the tail, so
   * the map holds every local id stored (and possibly ids a rejection removed since: a hit is
   * always checked against the record itself).
   */
  async #catchUpIds(log: LogStore, tail: number): Promise<Map<string, number>> {
    if (this.#ids && this.#ids.tail === tail) return this.#ids.map;
    const from = this.#ids?.tail ?? 0;
    const map = this.#ids?.map ?? new Map<string, number>();
    if (tail > from) {
      const records = await log.index('local').getAll(IDBKeyRange.bound(from, tail, true, false));
      for (const r of records) for (const e of eventsOf(r)) map.set(e.id, r.to);
    }
    this.#ids = { map, tail };
    return map;
  }

  /** The stored events (of local appends) with these ids. */
  async #lookupIds(log: LogStore, tail: number, ids: readonly string[]): Promise<Map<string, StoredEvent>> {
    const map = await this.#catchUpIds(log, tail);
    const keys = [...new Set(ids.map((id) => map.get(id)).filter((k): k is number => k !== undefined))];
    const out = new Map<string, StoredEvent>();
    if (keys.length === 0) return out;
    // The first record at or after the key: compaction may have merged the record into the
    // one that ends a run of records (see Compactor), which holds its events now.
    const records = await Promise.all(keys.map((k) => log.get(IDBKeyRange.lowerBound(k))));
    const wanted = new Set(ids);
    for (const r of records) if (r) for (const e of eventsOf(r)) if (wanted.has(e.id)) out.set(e.id, e);
    return out;
  }

  async #commitGroup(jobs: Job[]): Promise<void> {
    // The plain transaction: a warm append without projections makes one request, and idb's
    // wrappers (a proxy, a promise and listeners per request and per transaction) took about
    // 0.05 ms of the worker's time per awaited append in Chromium (profile). Reads and
    // projections get the wrapped transaction (`tx()`).
    const raw = unwrap(this.db).transaction(writeScope(this.projections), 'readwrite', {
      durability: this.durability,
    });
    const done = committed(raw);
    done.catch(() => undefined);
    let wrapped: Tx | undefined;
    const tx = (): Tx => {
      if (wrapped) return wrapped;
      wrapped = wrap(raw) as unknown as Tx;
      // Its `done` fails when ours does; `done` above is the one awaited.
      wrapped.done.catch(() => undefined);
      return wrapped;
    };
    const log = () => tx().objectStore('log');
    const names = [...new Set(jobs.map((j) => j.stream))];
    // Ids the app gave (a retry may bring them again) are looked up; ids the worker made are new.
    const checkIds = jobs.some((j) => !j.options.freshIds);
    // Warm cache: decide and write without reading the tail or the versions. The record's
    // `from` (the cached tail + 1) is unique: if anything was written since (another tab, a
    // pull, a renumber), a record with that `from` exists and the add fails before it commits.
    const cache = this.#cache;
    // A complete cache knows every stream written since the log was empty: others are at 0.
    const warm =
      !checkIds && cache !== undefined && (cache.complete || names.every((n) => cache.versions.has(n)));
    const [tail, ...versions] = warm
      ? [cache.tail, ...names.map((n) => cache.versions.get(n) ?? 0)]
      : await Promise.all([tailKey(log()), ...names.map((s) => streamVersion(log(), s))]);
    const state = new Map<string, { version: number }>();
    names.forEach((s, i) => {
      state.set(s, { version: versions[i]! });
    });
    const known = checkIds
      ? await this.#lookupIds(
          log(),
          tail,
          jobs.flatMap((j) => (j.options.freshIds ? [] : j.events.map((e) => e.id))),
        )
      : new Map<string, StoredEvent>();

    const recordedAt = this.now();
    const events: StoredEvent[] = [];
    const commits: CommitInfo[] = [];
    const runs: Array<[number, number]> = [];
    const outcomes: Array<{ ok: LocalAppendResult } | { error: unknown }> = [];
    let lp = tail;
    for (const job of jobs) {
      const rec = state.get(job.stream)!;
      // Idempotency comes before the version check: a refused version may be a retry.
      // `known` also holds the events appended earlier in this group.
      if (!job.options.freshIds) {
        const stored = job.events.map((e) => known.get(e.id));
        const found = stored.filter((s): s is StoredEvent => s !== undefined);
        if (found.length === job.events.length && found.every((s) => s.stream === job.stream)) {
          outcomes.push({
            ok: {
              version: Math.max(...found.map((s) => s.version)),
              positions: found.map((s) => s.lp),
              commitId: '',
              recordedAt: found[0]!.recordedAt,
            },
          });
          continue;
        }
        if (found.length > 0) {
          outcomes.push({
            error: idempotencyConflict(
              job.stream,
              job.events.filter((_, i) => stored[i] !== undefined).map((e) => e.id),
              job.events.filter((_, i) => stored[i] === undefined).map((e) => e.id),
            ),
          });
          continue;
        }
      }
      try {
        checkExpectedVersion(job.stream, job.options.expectedVersion, rec.version);
      } catch (e) {
        // A refusal is never decided on cached versions: nothing written would verify them.
        if (warm) {
          raw.abort();
          throw new StaleCache();
        }
        outcomes.push({ error: e });
        continue;
      }
      const added = job.events.map(
        (e, i): StoredEvent => ({
          id: e.id,
          stream: job.stream,
          type: e.type,
          schemaVersion: e.schemaVersion,
          data: e.data,
          metadata: e.metadata,
          version: rec.version + i + 1,
          lp: lp + i + 1,
          recordedAt,
        }),
      );
      const commit: CommitInfo = {
        commitId: newId(),
        stream: job.stream,
        ids: added.map((e) => e.id),
        seq: 0,
      };
      if (job.options.expectedVersion !== undefined) commit.expectedVersion = job.options.expectedVersion;
      if (job.options.command) commit.command = job.options.command;
      commits.push(commit);
      runs.push([events.length, added.length]);
      for (const e of added) events.push(e);
      if (checkIds) for (const e of added) known.set(e.id, e);
      lp += added.length;
      rec.version += added.length;
      outcomes.push({
        ok: {
          version: rec.version,
          positions: added.map((e) => e.lp),
          commitId: commit.commitId,
          recordedAt,
        },
      });
    }

    let added: Promise<unknown> | undefined;
    if (events.length > 0) {
      commits.forEach((c, i) => {
        c.seq = lp * SEQ_SLOTS + i;
      });
      // `add`, never `put`: a stale key must fail, not replace another writer's record.
      added = requested(raw.objectStore('log').add(appendRecord(tail + 1, lp, events, commits, runs)));
    }
    // Without projections nothing more is asked of this transaction: committing now saves
    // the round trip in which IndexedDB would otherwise wait for our success handlers.
    if (!this.projections.active) raw.commit();
    try {
      await added;
    } catch (e) {
      if (warm && isConstraintError(e)) throw new StaleCache();
      throw e;
    }
    // A throw here (a row that cannot be stored) must not leave the record added above.
    if (this.projections.active)
      await abortOnThrow(raw, () => this.projections.apply(tx(), events, undefined, tail));
    await done;
    const next = this.#cache ?? { tail: 0, versions: new Map<string, number>() };
    next.tail = lp;
    for (const [name, rec] of state) next.versions.set(name, rec.version);
    if (!warm) delete next.complete;
    if (next.versions.size > 10_000) {
      next.versions.clear();
      delete next.complete;
    }
    this.#cache = next;
    // The transaction saw the log at `tail`: a map that was complete there now also holds ours.
    if (this.#ids && events.length > 0) {
      for (const e of events) this.#ids.map.set(e.id, lp);
      if (this.#ids.tail === tail) this.#ids.tail = lp;
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if ('ok' in outcome) job.resolve(outcome.ok);
      else job.reject(outcome.error);
    });
    if (events.length > 0) this.onWrite(lp);
  }

  async readStream(
    stream: string,
    options: ReadOptions = {},
  ): Promise<{ events: StoredEvent[]; version: number }> {
    const limit = Math.min(options.limit ?? this.limits.defaultPageSize, this.limits.maxPageSize);
    const log = this.db.transaction('log', 'readonly').store;
    const backward = options.direction === 'backward';
    // Forward reads know their window before the version is read: both requests go at once.
    const firstFrom = backward ? undefined : Math.max(1, options.from ?? 1);
    const [version, first] = await Promise.all([
      streamVersion(log, stream),
      firstFrom === undefined ? undefined : streamWindowStart(log, stream, firstFrom),
    ]);
    if (version === 0) throw streamNotFound(stream);
    let lo: number;
    let hi: number;
    if (backward) {
      hi = Math.min(options.from ?? version, version);
      lo = Math.max(1, hi - limit + 1);
    } else {
      lo = firstFrom!;
      hi = Math.min(version, lo + limit - 1);
    }
    const events = hi < lo ? [] : await loadWindow(log, stream, lo, hi, first);
    return { events: backward ? events.reverse() : events, version };
  }

  /** Every event of a stream after version `after` (no page limit), for deciders. */
  async loadStream(stream: string, after = 0): Promise<{ events: StoredEvent[]; version: number }> {
    const events = await loadStream(this.db.transaction('log', 'readonly').store, stream, after);
    return { events, version: events.at(-1)?.version ?? after };
  }

  /**
   * Events after local position `after` matching the filter, at most `limit`, from at most
   * `scanBudget(limits, limit)` positions (as every store's global read); `scannedTo` is the
   * last position examined, where the reader goes on.
   */
  async readAll(
    options: { after?: number; limit?: number; filter?: EventFilter } = {},
  ): Promise<{ events: StoredEvent[]; head: number; scannedTo: number }> {
    const after = options.after ?? 0;
    const limit = Math.min(options.limit ?? this.limits.defaultPageSize, this.limits.maxPageSize);
    const tx = this.db.transaction('log', 'readonly');
    const log = tx.store;
    const head = await tailKey(log);
    const end = Math.min(head, after + scanBudget(this.limits, limit));
    const out: StoredEvent[] = [];
    let scannedTo = Math.max(after, end);
    let lower = after + 1;
    scan: while (lower <= end) {
      const records = await log.getAll(IDBKeyRange.lowerBound(lower), READ_BATCH);
      for (const r of records) {
        for (const e of eventsOf(r)) {
          if (e.lp <= after || e.lp > end || !matches(options.filter, e)) continue;
          out.push(e);
          if (out.length === limit) {
            scannedTo = e.lp;
            break scan;
          }
        }
      }
      if (records.length < READ_BATCH) break;
      lower = records.at(-1)!.to + 1;
    }
    return { events: out, head, scannedTo };
  }

  async head(): Promise<number> {
    return tailKey(this.db.transaction('log', 'readonly').store);
  }
}
