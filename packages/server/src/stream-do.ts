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
import { z } from 'zod';
import { type AggregateOutcome, loadAggregate } from './aggregate.ts';
import { Claims, checkStore, checkStream, hasExpired, jwtSecret, verifyToken } from './auth.ts';
import type { ServerEnv } from './env.ts';
import { answerTaken, type CommitOutcome } from './log-row.ts';
import { type LoggedChunk, type PackedEvents, unpackChunk, versioned } from './packed.ts';
import type { SequencerApi } from './sequencer-do.ts';
import { readClientMessage, sendTo } from './socket-message.ts';
import { SocketStates } from './socket-states.ts';
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

const StreamSocketState = z.object({
  store: z.string(),
  stream: z.string(),
  claims: z.optional(Claims),
  /** A heartbeat found it without a token: the next one closes it (see `awaitAuth`). */
  waiting: z.optional(z.literal(true)),
  subs: z.array(
    z.object({ id: z.string(), cursor: z.number().int().min(0), types: z.optional(z.array(z.string())) }),
  ),
});
type StreamSocketState = z.infer<typeof StreamSocketState>;

const CATCH_UP_PAGE = 500;
const HEARTBEAT_MS = 25_000;
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
  catchUpPage = CATCH_UP_PAGE;
  private sequencerStub: { store: string; api: SequencerApi } | undefined;
  /**
   * Per-socket state, one object per socket shared by every handler, and kept in the socket's
   * attachment too (which survives hibernation): a handler that awaits and then saves cannot
   * write back an old copy over what another handler saved meanwhile.
   */
  private readonly sockets = new SocketStates(StreamSocketState);
  /** Subscriptions still catching up, per socket: id to the catch-up that owns it. */
  private readonly catchingUp = new Map<WebSocket, Map<string, symbol>>();

  constructor(ctx: DurableObjectState, env: ServerEnv) {
    super(ctx, env);
    this.table = new StreamTable(ctx.storage.sql);
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
        this.broadcast(stream, logged);
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

  // ---- WebSocket subscribers of this stream (hibernating) -------------------------------

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket')
      return new Response('expected a WebSocket upgrade', { status: 426 });
    const claimsHeader = request.headers.get('x-edgelog-claims');
    const state: StreamSocketState = {
      store: request.headers.get('x-edgelog-store') ?? '',
      stream: request.headers.get('x-edgelog-stream') ?? '',
      subs: [],
    };
    if (claimsHeader) state.claims = Claims.parse(JSON.parse(claimsHeader));
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    this.sockets.save(pair[1], state);
    if (state.claims) sendTo(pair[1], { type: 'ready', head: this.lastPosition() });
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /**
   * Heartbeats for the stream's sockets; `head` is the stream's last position. A socket whose
   * token has expired is closed instead, even if it is idle.
   */
  override async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    this.sockets.heartbeat(sockets, this.lastPosition(), (ws) => this.catchingUp.get(ws)?.clear());
    if (sockets.length > 0) await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const socket = this.sockets.load(ws);
    if (!socket) {
      ws.close(1011, 'lost socket state');
      return;
    }
    const read = readClientMessage(raw);
    if ('error' in read) {
      sendTo(ws, { type: 'error', error: read.error });
      return;
    }
    const { message } = read;
    if (message.type !== 'auth' && socket.claims && hasExpired(socket.claims)) {
      this.expire(ws, socket);
      return;
    }
    switch (message.type) {
      case 'auth':
        try {
          const claims = await verifyToken(message.token, jwtSecret(this.env));
          checkStore(claims, socket.store);
          checkStream(claims, socket.stream);
          // Read again after the await: a catch-up may have registered a subscription meanwhile.
          const current = this.sockets.load(ws);
          if (!current) return;
          current.claims = claims;
          this.sockets.save(ws, current);
          sendTo(ws, { type: 'ready', head: this.lastPosition() });
        } catch (e) {
          sendTo(ws, { type: 'error', error: toWireError(e) });
          ws.close(1008, 'unauthorized');
        }
        return;
      case 'subscribe': {
        if (!socket.claims) {
          sendTo(ws, {
            type: 'error',
            subscription: message.id,
            error: error('Unauthorized', 'send an auth message first').toWire(),
          });
          return;
        }
        const { id, after = 0, filter } = message;
        const sub: StreamSocketState['subs'][number] = { id, cursor: after };
        if (filter?.types) sub.types = filter.types;
        // The subscription is kept in the socket's attachment once caught up: one that cannot
        // be (over the attachment's size limit) is refused now, before any catch-up.
        if (!fits(ws, { ...socket, subs: [...socket.subs.filter((s) => s.id !== id), sub] })) {
          ws.serializeAttachment(socket);
          sendTo(ws, { type: 'error', subscription: id, error: filterTooLarge() });
          return;
        }
        ws.serializeAttachment(socket);
        await this.catchUp(ws, socket, sub);
        return;
      }
      case 'unsubscribe':
        this.catchingUp.get(ws)?.delete(message.id);
        socket.subs = socket.subs.filter((s) => s.id !== message.id);
        this.sockets.save(ws, socket);
        return;
      case 'ping':
        sendTo(ws, message.at === undefined ? { type: 'pong' } : { type: 'pong', at: message.at });
        return;
      default: {
        const never: never = message;
        return never;
      }
    }
  }

  /**
   * Sends a subscription the stream's events after its cursor, one page per turn of the
   * stream's mutex, so appends to the stream get in between pages of a long catch-up. Each
   * page is read after the last copy, with no commit in flight; the page that reaches the
   * stream's end sends `caught-up` and registers the subscription for live delivery in the
   * same turn, so the first live event is exactly the one after it. An unsubscribe, a second
   * subscribe with the same id or a closed socket ends the catch-up.
   */
  private async catchUp(
    ws: WebSocket,
    socket: StreamSocketState,
    sub: StreamSocketState['subs'][number],
  ): Promise<void> {
    const token = Symbol(sub.id);
    const pending = this.catchingUp.get(ws) ?? new Map<string, symbol>();
    this.catchingUp.set(ws, pending);
    pending.set(sub.id, token);
    const current = () => pending.get(sub.id) === token && ws.readyState === WebSocket.READY_STATE_OPEN;
    try {
      for (let turn = 0; current(); turn++) {
        // A task between pages: the mutex alone hands over in microtasks, before any append
        // waiting on the runtime's event loop could get in.
        if (turn > 0) await new Promise((resolve) => setTimeout(resolve, 0));
        const done = await this.exclusive(async () => {
          if (!current()) return true;
          const state = this.sockets.load(ws);
          if (!state?.claims) return true;
          if (hasExpired(state.claims)) {
            this.expire(ws, state);
            return true;
          }
          await this.sync(socket.store, socket.stream);
          this.flushCopies();
          const page = this.table.afterPosition(socket.stream, sub.cursor, this.catchUpPage);
          const matching = page.filter((e) => !sub.types || sub.types.includes(e.type));
          if (matching.length > 0) sendTo(ws, { type: 'events', subscription: sub.id, events: matching });
          sub.cursor = page.at(-1)?.position ?? sub.cursor;
          if (page.length === this.catchUpPage) return false;
          const fresh = this.sockets.load(ws);
          if (!fresh?.claims) return true;
          const before = fresh.subs;
          fresh.subs = [...fresh.subs.filter((s) => s.id !== sub.id), sub];
          if (!this.sockets.save(ws, fresh)) {
            // Other subscriptions grew the attachment meanwhile: refused, and nothing kept.
            fresh.subs = before;
            sendTo(ws, { type: 'error', subscription: sub.id, error: filterTooLarge() });
            return true;
          }
          sendTo(ws, { type: 'caught-up', subscription: sub.id, position: sub.cursor });
          return true;
        });
        if (done) break;
      }
    } finally {
      if (pending.get(sub.id) === token) pending.delete(sub.id);
      if (pending.size === 0) this.catchingUp.delete(ws);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets.forget(ws);
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.sockets.forget(ws);
  }

  private broadcast(stream: string, logged: LoggedChunk[]): void {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const envelopes = logged.flatMap((c) => unpackChunk(stream, c));
    const last = envelopes.at(-1)?.position ?? 0;
    const now = Date.now() / 1000;
    for (const ws of sockets) {
      const state = this.sockets.load(ws);
      if (!state?.claims || state.subs.length === 0) continue;
      if (hasExpired(state.claims, now)) {
        this.expire(ws, state);
        continue;
      }
      for (const sub of state.subs) {
        const events = envelopes.filter(
          (e) => (e.position ?? 0) > sub.cursor && (!sub.types || sub.types.includes(e.type)),
        );
        if (events.length > 0) sendTo(ws, { type: 'events', subscription: sub.id, events });
        sub.cursor = Math.max(sub.cursor, last);
      }
      this.sockets.save(ws, state);
    }
  }

  /** A socket whose token has expired: its catch-ups end, and SocketStates closes it. */
  private expire(ws: WebSocket, state: StreamSocketState): void {
    this.catchingUp.get(ws)?.clear();
    this.sockets.expire(ws, state);
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
      this.broadcast(stream, tail);
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

/** Writes `state` to the socket's attachment; false when it is over the size limit (16 KiB). */
function fits(ws: WebSocket, state: StreamSocketState): boolean {
  try {
    ws.serializeAttachment(state);
    return true;
  } catch {
    return false;
  }
}

const filterTooLarge = () =>
  validationError([{ path: 'filter', message: 'subscription filter too large' }]).toWire();
