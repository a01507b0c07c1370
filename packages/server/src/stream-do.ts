import { DurableObject } from 'cloudflare:workers';
import {
  type EventEnvelope,
  type ExpectedVersion,
  error,
  hasDuplicate,
  idempotencyConflict,
  matchesExpectedVersion,
  type ReadStreamQuery,
  type ReadStreamResponse,
  streamNotFound,
  toWireError,
  validationError,
  type WireError,
} from '@edgelog/core';
import { type AggregateOutcome, loadAggregate } from './aggregate.ts';
import type { ServerEnv } from './env.ts';
import { answerTaken, type CommitOutcome } from './log-row.ts';
import { type LoggedChunk, type PackedEvents, versioned } from './packed.ts';
import type { SequencerApi } from './sequencer-do.ts';
import { StreamSockets } from './stream-sockets.ts';
import { StreamTable } from './stream-table.ts';

export interface AppendInput {
  store: string;
  stream: string;
  expectedVersion?: ExpectedVersion;
  /** The validated events, packed by the Worker with the server's `$author` stamped in. */
  events: PackedEvents;
  /**
   * An earlier commit of this stream in the same push did not land (push-chain.ts): answer
   * `duplicate` if the events are stored already, else `conflict` whatever the version; the
   * expected version then only says where the conflict's unseen events start.
   */
  afterFailedCommit?: boolean;
  /** Bench-only: commit locally without the sequencer (positions are then stand-ins). */
  bypassSequencer?: boolean;
}

/** The answer to one append, shaped so that push can forward it commit by commit. */
export type AppendOutcome =
  | { status: 'committed' | 'duplicate'; version: number; positions: number[] }
  | { status: 'conflict'; expected: ExpectedVersion; version: number; events: EventEnvelope[] }
  | { status: 'rejected'; error: WireError };

/**
 * The StreamDO's RPC surface as the Worker sees it. Workers RPC maps `unknown` payloads
 * (event data) to unusable types, so the stub is typed by hand here, once.
 */
export interface StreamApi {
  append(input: AppendInput): Promise<AppendOutcome>;
  fetch(request: Request): Promise<Response>;
  read(store: string, stream: string, query: ReadStreamQuery): Promise<ReadOutcome>;
  loadAggregate(store: string, stream: string, decider: string): Promise<AggregateOutcome>;
}

export type ReadOutcome = { ok: true; page: ReadStreamResponse } | { ok: false; error: WireError };

/** Test-only crash points of the StreamDO (see README, crash safety). */
export type StreamFault = 'before-sequencer-commit' | 'after-sequencer-commit';

const MAX_CONFLICT_EVENTS = 5000;
const DEFAULT_PAGE = 500;
const SYNC_PAGE = 1000;
/**
 * The copy of committed events is written behind, many commits in one storage write: every
 * storage commit is a durable write (in local workerd, an fsync on the runtime's one thread, so
 * each one stalls every object), and a timer per stream would cost one per stream per period
 * whatever the load. Copies wait at most this long after the first of them, or until this many
 * events or UTF-16 code units of event text wait (the memory they hold), or until a read.
 */
export const COPY_DELAY_MS = 1000;
export const COPY_EVENTS = 10_000;
export const COPY_CHARS = 1_000_000;

/** How long copies waiting in memory may wait still, given how much waits: 0 = write them now. */
export function copyDelay(events: number, chars: number): number {
  return events >= COPY_EVENTS || chars >= COPY_CHARS ? 0 : COPY_DELAY_MS;
}

/**
 * One per (store, stream). Serialises appends to its stream and keeps the stream's committed
 * events in SQLite for fast reads. The store's global log (SequencerDO) is the source of
 * truth: an append is committed when the sequencer has written it, and the StreamDO's table
 * is a copy of its stream's slice of that log, written behind: committed chunks wait in
 * memory and are written together (one storage commit for many appends) after
 * `COPY_DELAY_MS`, or at once before anything reads the table. A StreamDO that may have
 * missed a commit (it was restarted, so its unwritten copies are gone, or a sequencer call
 * ended without an answer) copies the stream's tail from the log before it answers anything.
 */
export class StreamDO extends DurableObject<ServerEnv> {
  private readonly table: StreamTable;
  private tail: Promise<unknown> = Promise.resolve();
  /** False after a start and after a commit with an unknown outcome: sync before answering. */
  private synced = false;
  /** Chunks committed in the log and not yet copied into the table, in version order. */
  private uncopied: LoggedChunk[] = [];
  private uncopiedEvents = 0;
  private uncopiedChars = 0;
  private copyTimer: ReturnType<typeof setTimeout> | undefined;
  /** Test-only: crash at this point of the next append. */
  fault: StreamFault | undefined;
  /** Events per catch-up page of a stream subscription (tests shrink it). */
  catchUpPage = 500;
  private sequencerStub: { store: string; api: SequencerApi } | undefined;
  private readonly sockets: StreamSockets;

  constructor(ctx: DurableObjectState, env: ServerEnv) {
    super(ctx, env);
    this.table = new StreamTable(ctx.storage.sql);
    this.sockets = new StreamSockets({
      ctx,
      env,
      lastPosition: () => this.lastPosition(),
      exclusive: (fn) => this.exclusive(fn),
      readAfter: async (store, stream, after, limit) => {
        await this.sync(store, stream);
        this.flushCopies();
        return this.table.afterPosition(stream, after, limit);
      },
      catchUpPage: () => this.catchUpPage,
    });
  }

  /** Runs `fn` after every earlier exclusive call has settled, across all its awaits. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  append(input: AppendInput): Promise<AppendOutcome> {
    return this.exclusive(async () => {
      try {
        return await this.appendExclusive(input);
      } catch (e) {
        this.dropSequencerStub();
        return { status: 'rejected', error: toWireError(e) };
      }
    });
  }

  /** Stream read, after any needed sync with the global log. */
  read(store: string, stream: string, query: ReadStreamQuery): Promise<ReadOutcome> {
    const answer = (): ReadOutcome => {
      const version = this.version();
      if (version === 0) return { ok: false, error: streamNotFound(stream).toWire() };
      const limit = query.limit ?? DEFAULT_PAGE;
      const events =
        query.direction === 'backward'
          ? this.table.read(stream, query.from ?? version, 'backward', limit)
          : this.table.read(stream, query.from ?? 1, 'forward', limit);
      return { ok: true, page: { events, version } };
    };
    const guarded = async (): Promise<ReadOutcome> => {
      try {
        await this.sync(store, stream);
        this.flushCopies();
        return answer();
      } catch (e) {
        this.dropSequencerStub();
        return { ok: false, error: toWireError(e) };
      }
    };
    // Reads need the mutex only until the first sync; afterwards the table is current.
    return this.synced ? guarded() : this.exclusive(guarded);
  }

  /** Folds the stream with a configured decider, from its snapshot (see aggregate.ts). */
  loadAggregate(store: string, stream: string, decider: string): Promise<AggregateOutcome> {
    return loadAggregate(this.ctx.storage.sql, decider, stream, (from, limit) =>
      this.read(store, stream, { from, limit }),
    );
  }

  private async appendExclusive(input: AppendInput, attempt = 0): Promise<AppendOutcome> {
    const { store, stream } = input;
    const { ids, chunks } = input.events;
    if (hasDuplicate(ids))
      throw validationError([{ path: 'events', message: 'event ids must be unique within an append' }]);
    await this.sync(store, stream);
    if (input.bypassSequencer && this.env.EDGELOG_BENCH === '1') return this.appendStandalone(input);

    const version = this.version();
    const expected = input.expectedVersion ?? 'any';
    if (input.afterFailedCommit || !matchesExpectedVersion(expected, version)) {
      // Idempotency before the expected version: a retry of an append that landed gets its
      // original answer. The store's id index is the sequencer's; ask it only on this path.
      const taken = await this.sequencer(store).findIds(ids);
      if (taken.length > 0) return this.answerDuplicate(answerTaken({ stream, ids }, taken), version);
      return { status: 'conflict', expected, version, events: this.unseen(stream, expected) };
    }

    const placed = versioned(chunks, version + 1);
    if (this.fault === 'before-sequencer-commit') this.crash();
    let outcome: CommitOutcome;
    try {
      outcome = await this.sequencer(store).commit({
        commitId: crypto.randomUUID(),
        stream,
        ids,
        chunks: placed,
      });
    } catch (e) {
      // The batch may or may not be in the log: find out from the log before the next answer.
      this.synced = false;
      throw e;
    }
    if (this.fault === 'after-sequencer-commit') this.crash();
    switch (outcome.status) {
      case 'rejected':
      case 'duplicate':
        return this.answerDuplicate(outcome, version);
      case 'stale':
        // The log has commits this table missed (a crash window): copy them, then decide again.
        this.synced = false;
        if (attempt > 0) throw error('Internal', `stream '${stream}' could not catch up with the global log`);
        return this.appendExclusive(input, attempt + 1);
      case 'committed': {
        let position = outcome.firstPosition;
        const logged: LoggedChunk[] = placed.map((c) => {
          const chunk = { ...c, firstPosition: position, recordedAt: outcome.recordedAt };
          position += c.count;
          return chunk;
        });
        this.copyLater(logged);
        // The sequencer answered, so the commit is durable in the log: tell the stream's sockets.
        this.sockets.broadcast(stream, logged);
        return {
          status: 'committed',
          version: version + ids.length,
          positions: ids.map((_, i) => outcome.firstPosition + i),
        };
      }
      default: {
        const never: never = outcome;
        return never;
      }
    }
  }

  private answerDuplicate(
    outcome: Extract<CommitOutcome, { status: 'duplicate' | 'rejected' }>,
    version: number,
  ): AppendOutcome {
    if (outcome.status === 'rejected') return outcome;
    // The log holds versions this table has not copied: copy them before the next answer.
    if (outcome.version > version) this.synced = false;
    return { status: 'duplicate', version: outcome.version, positions: outcome.positions };
  }

  /** The stream's events after the expected version the writer saw, for a conflict answer. */
  private unseen(stream: string, expected: ExpectedVersion): EventEnvelope[] {
    const after = typeof expected === 'number' ? expected : 0;
    this.flushCopies();
    return this.table.read(stream, after + 1, 'forward', MAX_CONFLICT_EVENTS);
  }

  /**
   * Bench-only: the same append as a stream without a sequencer would do it, in one
   * synchronous turn (one implicit transaction): idempotency by the stream's own id index,
   * the expected version, the events' row. Positions are stand-ins (the versions).
   */
  private appendStandalone(input: AppendInput): AppendOutcome {
    const { stream } = input;
    const { ids, chunks } = input.events;
    const found = this.table.standaloneIds(ids);
    if (found.size === ids.length) {
      const versions = ids.map((id) => found.get(id) as number);
      return { status: 'duplicate', version: Math.max(...versions), positions: versions };
    }
    if (found.size > 0)
      throw idempotencyConflict(
        stream,
        ids.filter((id) => found.has(id)),
        ids.filter((id) => !found.has(id)),
      );
    const version = this.version();
    const expected = input.expectedVersion ?? 'any';
    if (!matchesExpectedVersion(expected, version))
      return { status: 'conflict', expected, version, events: this.unseen(stream, expected) };
    const recordedAt = new Date().toISOString();
    this.table.insert(
      versioned(chunks, version + 1).map((c) => ({ ...c, firstPosition: c.firstVersion, recordedAt })),
    );
    this.table.insertStandaloneIds(ids, version + 1);
    return {
      status: 'committed',
      version: version + ids.length,
      positions: ids.map((_, i) => version + 1 + i),
    };
  }

  // ---- WebSocket subscribers of this stream (hibernating): stream-sockets.ts ------------

  override fetch(request: Request): Promise<Response> {
    return this.sockets.accept(request);
  }

  override alarm(): Promise<void> {
    return this.sockets.heartbeat();
  }

  override webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    return this.sockets.message(ws, raw);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.sockets.closed(ws);
  }

  private lastPosition(): number {
    const last = this.uncopied.at(-1);
    return last ? last.firstPosition + last.count - 1 : this.table.lastPosition();
  }

  /** Copies the stream's tail from the global log when this table may be behind it. */
  private async sync(store: string, stream: string): Promise<void> {
    if (this.synced) return;
    // Copies still in memory are committed: write them first, so the table has no gap. If that
    // write fails they are dropped, and the loop copies them from the log, from the table's end.
    this.copyNow();
    this.uncopied = [];
    this.uncopiedEvents = 0;
    this.uncopiedChars = 0;
    for (;;) {
      const tail = await this.sequencer(store).streamTail(stream, this.table.version(), SYNC_PAGE);
      this.table.insert(tail);
      // Commits this object learned only from the log (an answer it never got) reach the
      // stream's live subscribers too; each subscription's cursor skips what it has seen.
      this.sockets.broadcast(stream, tail);
      if (tail.reduce((n, c) => n + c.count, 0) < SYNC_PAGE) break;
    }
    this.synced = true;
  }

  /**
   * The log already holds the commit durably, so neither the answer nor the next append waits
   * for this table's copy: it is written behind, many commits in one storage write. If the
   * object dies first, the start-up sync copies the commits again from the log.
   */
  private copyLater(chunks: LoggedChunk[]): void {
    // After a failed copy the next sync copies from the table's end: queueing later commits
    // now would write them first and leave a gap.
    if (!this.synced) return;
    this.uncopied.push(...chunks);
    for (const c of chunks) {
      this.uncopiedEvents += c.count;
      this.uncopiedChars += c.events.length;
    }
    const delay = copyDelay(this.uncopiedEvents, this.uncopiedChars);
    if (this.copyTimer !== undefined) {
      if (delay > 0) return;
      clearTimeout(this.copyTimer);
    }
    this.copyTimer = setTimeout(() => this.copyNow(), delay);
  }

  /** Writes the copies waiting in memory, in one transaction. */
  private copyNow(): void {
    if (this.copyTimer !== undefined) clearTimeout(this.copyTimer);
    this.copyTimer = undefined;
    if (this.uncopied.length === 0) return;
    const chunks = this.uncopied;
    this.uncopied = [];
    this.uncopiedEvents = 0;
    this.uncopiedChars = 0;
    try {
      this.ctx.storage.transactionSync(() => this.table.insert(chunks));
    } catch {
      // The log has them: copy them from there before the next answer.
      this.synced = false;
    }
  }

  /** Writes the waiting copies before the table answers a read; a failed write fails the read. */
  private flushCopies(): void {
    this.copyNow();
    if (!this.synced) throw error('Internal', 'the stream copy could not be written; retry');
  }

  /** The stream's version: the number of its committed events. */
  private version(): number {
    const last = this.uncopied.at(-1);
    return last ? last.firstVersion + last.count - 1 : this.table.version();
  }

  /**
   * The store's SequencerDO. The stub is kept (an object serves one stream of one store), so
   * appends reuse it instead of making one each (measured: about 10% more 8 x 100 appends per
   * second in local workerd). A call that failed may have broken it: it is dropped then.
   */
  private sequencer(store: string): SequencerApi {
    if (this.sequencerStub?.store !== store) {
      const ns = this.env.SEQUENCERS;
      this.sequencerStub = { store, api: ns.get(ns.idFromName(store)) as unknown as SequencerApi };
    }
    return this.sequencerStub.api;
  }

  private dropSequencerStub(): void {
    this.sequencerStub = undefined;
  }

  /** Test-only: the object dies here; nothing after this line runs. */
  private crash(): never {
    this.fault = undefined;
    this.ctx.abort('injected stream fault');
    throw error('Internal', 'injected stream fault');
  }
}
