import { DurableObject } from 'cloudflare:workers';
import {
  defaultLimits,
  EdgelogError,
  type EventEnvelope,
  error,
  scanBudget,
  toWireError,
} from '@edgelog/core';
import { Claims, checkStore, hasExpired, jwtSecret, verifyToken } from './auth.ts';
import type { ServerEnv } from './env.ts';
import { GlobalLog, type GlobalReadScope, type StoredChunk } from './global-log.ts';
import { answerTaken, type CommitOutcome, type CommitRequest, type IdLocation } from './log-row.ts';
import { type LoggedChunk, unpackChunk } from './packed.ts';
import { ProjectionPoker } from './projection-routes.ts';
import { eventsMessage, liveMessage, SocketState, scopeOf, subscriptionFor } from './sequencer-sockets.ts';
import { filterTooLarge, sendPong, sendTo } from './socket-message.ts';
import { SocketStates } from './socket-states.ts';

export type { GlobalReadScope } from './global-log.ts';

/** The SequencerDO's RPC surface as its callers see it (see StreamApi for why it is typed by hand). */
export interface SequencerApi {
  commit(request: CommitRequest): Promise<CommitOutcome>;
  streamTail(stream: string, afterVersion: number, limit: number): Promise<LoggedChunk[]>;
  findIds(ids: string[]): Promise<IdLocation[]>;
  readAll(after: number, limit: number, scope: GlobalReadScope, maxScan?: number): Promise<GlobalPage>;
  readChunks(after: number, limit: number, maxChars: number): Promise<ChunkPage>;
  fetch(request: Request): Promise<Response>;
}

/** A page of the global log (core's `ReadAllResponse`): see `GlobalLog.scan` for `scannedTo`. */
export interface GlobalPage {
  events: EventEnvelope[];
  head: number;
  scannedTo: number;
}

/** A page of the global log as stored (see `GlobalLog.chunks`), for the store's ProjectionDOs. */
export interface ChunkPage {
  chunks: StoredChunk[];
  head: number;
}

/** Test-only crash points of the sequencer (see README, crash safety). */
export type SequencerFault = 'before-commit' | 'after-commit';

const HEARTBEAT_MS = 25_000;
const CATCH_UP_PAGE = 500;

interface Waiter {
  request: CommitRequest;
  resolve: (outcome: CommitOutcome) => void;
  reject: (e: unknown) => void;
}

/**
 * One per store. Assigns positions at commit and writes each batch to the store's global log
 * in the same SQLite transaction, so the log never shows position p+1 before p. Concurrent
 * commits are queued and written together in one transaction (group commit). The global log
 * is the source of truth for "committed".
 */
export class SequencerDO extends DurableObject<ServerEnv> {
  private readonly log: GlobalLog;
  private head: number;
  private queue: Waiter[] = [];
  private flushScheduled = false;
  private readonly sockets = new SocketStates(SocketState);
  /** Tells the store's edge projections, after each group commit, that the log grew. */
  private readonly poker: ProjectionPoker;
  /** Test-only: crash at this point of the next flush. */
  fault: SequencerFault | undefined;
  /** Since this object started: storage transactions written and commits they carried. */
  readonly stats = { transactions: 0, commits: 0 };

  constructor(ctx: DurableObjectState, env: ServerEnv) {
    super(ctx, env);
    this.log = new GlobalLog(ctx.storage.sql);
    this.head = this.log.head();
    // The store's name, as the Worker named this object (`idFromName(store)`).
    this.poker = new ProjectionPoker(env, ctx.id.name);
  }

  /**
   * Commits one StreamDO batch: one RPC per batch. Idempotent by event ids (not by commit id,
   * which is fresh per attempt): a repeated batch answers the original version and positions.
   * Resolves once the batch is written; the runtime's output gate holds the answer until the
   * write is durable.
   */
  commit(request: CommitRequest): Promise<CommitOutcome> {
    return new Promise<CommitOutcome>((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // A macrotask, not a microtask: commits that arrive meanwhile join the same transaction.
        setTimeout(() => this.flush(), 0);
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    if (this.fault === 'before-commit') {
      this.fault = undefined;
      this.crash(batch);
      return;
    }
    const recordedAt = new Date().toISOString();
    let head = this.head;
    let outcomes: CommitOutcome[];
    const fresh: CommitRequest[] = [];
    try {
      outcomes = this.ctx.storage.transactionSync(() =>
        batch.map(({ request }) => {
          const outcome = this.apply(request, head + 1, recordedAt);
          if (outcome.status === 'committed') {
            fresh.push(request);
            head += request.ids.length;
          }
          return outcome;
        }),
      );
    } catch (e) {
      // The transaction rolled back every append in it, and the versions they remembered.
      this.log.forgetVersions();
      for (const w of batch) w.reject(e);
      return;
    }
    const firstFresh = this.head + 1;
    this.head = head;
    this.stats.transactions++;
    this.stats.commits += batch.length;
    if (this.fault === 'after-commit') {
      this.fault = undefined;
      void this.ctx.storage.sync().then(() => this.crash(batch));
      return;
    }
    batch.forEach((w, i) => {
      w.resolve(outcomes[i] as CommitOutcome);
    });
    if (fresh.length > 0) {
      this.broadcast(firstFresh, fresh, recordedAt);
      this.poker.poke();
    }
  }

  private crash(batch: Waiter[]): void {
    for (const w of batch) w.reject(error('Internal', 'injected sequencer fault'));
    this.ctx.abort('injected sequencer fault');
  }

  /**
   * Runs inside the group's transaction. Idempotency comes before the stream's version, as in
   * every store: a retry whose ids are all in this stream answers the original outcome,
   * wherever the stream has moved since. Fresh ids are the common case, so a commit at the
   * stream's next version is attempted first, and the id index's primary key refuses any id
   * the store has (`GlobalLog.tryAppend`); only then are the ids looked up.
   */
  private apply(request: CommitRequest, firstPosition: number, recordedAt: string): CommitOutcome {
    const last = this.log.lastVersion(request.stream);
    if (last === (request.chunks[0]?.firstVersion ?? 1) - 1) {
      if (this.log.tryAppend(request, firstPosition, recordedAt))
        return { status: 'committed', firstPosition, recordedAt };
      const taken = this.log.findIds(request.ids);
      if (taken.length > 0) return answerTaken(request, taken);
      // The StreamDO refuses an append that repeats an id, so this is a broken invariant.
      throw error(
        'Internal',
        `commit ${request.commitId} was refused by the id index, but holds no stored id`,
      );
    }
    const taken = this.log.findIds(request.ids);
    if (taken.length > 0) return answerTaken(request, taken);
    return { status: 'stale', logVersion: last };
  }

  /** Where the store holds each of `ids` (for a StreamDO deciding idempotency on a conflict). */
  findIds(ids: string[]): IdLocation[] {
    return this.log.findIds(ids);
  }

  /** A stream's committed chunks after `afterVersion`, for a StreamDO catching up after a crash. */
  streamTail(stream: string, afterVersion: number, limit: number): LoggedChunk[] {
    return this.log.streamTail(stream, afterVersion, limit);
  }

  /** The store's last position. */
  getHead(): number {
    return this.head;
  }

  /**
   * A page of the global log after `after` (exclusive), in position order, within `scope`,
   * from at most `max(limit, maxScan)` positions of the log (`maxScan` defaults to
   * `defaultLimits.maxScanPerRead`).
   */
  readAll(
    after: number,
    limit: number,
    scope: GlobalReadScope,
    maxScan = defaultLimits.maxScanPerRead,
  ): GlobalPage {
    const page = this.log.scan(after, limit, scope, scanBudget({ maxScanPerRead: maxScan }, limit));
    return { ...page, head: this.head };
  }

  /**
   * The next `limit` events after `after` as the stored chunks' text (whole chunks but the
   * last, which is cut), at most about `maxChars` of it. For the store's own ProjectionDOs: the
   * text crosses the RPC as one string per chunk instead of a cloned envelope per event.
   */
  readChunks(after: number, limit: number, maxChars: number): ChunkPage {
    return { chunks: this.log.chunks(after, limit, maxChars), head: this.head };
  }

  // ---- WebSocket subscribers of the global log (hibernating) ----------------------------

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket')
      return new Response('expected a WebSocket upgrade', { status: 426 });
    const store = request.headers.get('x-edgelog-store') ?? '';
    const claimsHeader = request.headers.get('x-edgelog-claims');
    const claims = claimsHeader ? Claims.parse(JSON.parse(claimsHeader)) : undefined;
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server);
    const state: SocketState = claims ? { store, claims, subs: [] } : { store, subs: [] };
    this.sockets.save(server, state);
    if (claims) sendTo(server, { type: 'ready', head: this.head });
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const received = this.sockets.receive(ws, raw);
    if (!received) return;
    const { state, message } = received;
    switch (message.type) {
      case 'auth': {
        try {
          const claims = await verifyToken(message.token, jwtSecret(this.env));
          checkStore(claims, state.store);
          state.claims = claims;
          this.sockets.save(ws, state);
          sendTo(ws, { type: 'ready', head: this.head });
        } catch (e) {
          sendTo(ws, { type: 'error', error: toWireError(e) });
          ws.close(1008, 'unauthorized');
        }
        return;
      }
      case 'subscribe': {
        const sub = subscriptionFor(message, state.claims);
        if (sub instanceof EdgelogError) {
          sendTo(ws, { type: 'error', subscription: message.id, error: sub.toWire() });
          return;
        }
        const before = state.subs;
        state.subs = [...state.subs.filter((s) => s.id !== sub.id), sub];
        if (!this.sockets.save(ws, state)) {
          // As the attachment still has it: a subscription this one was to replace stays.
          state.subs = before;
          sendTo(ws, {
            type: 'error',
            subscription: sub.id,
            error: filterTooLarge(),
          });
          return;
        }
        this.catchUp(ws, sub.id);
        return;
      }
      case 'unsubscribe':
        state.subs = state.subs.filter((s) => s.id !== message.id);
        this.sockets.save(ws, state);
        return;
      case 'ping':
        sendPong(ws, message);
        return;
      default: {
        const never: never = message;
        return never;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    this.sockets.closed(ws, code, reason);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.sockets.closed(ws);
  }

  /** Heartbeats; a socket whose token has expired is closed instead, even if it is idle. */
  override async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    this.sockets.heartbeat(sockets, this.head);
    if (sockets.length > 0) await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
  }

  /**
   * Sends one catch-up page per task, so a long catch-up never blocks commits; a page scans
   * at most `defaultLimits.maxScanPerRead` positions, so a sparse filter's catch-up is many
   * short tasks, not one long one (a page with no match sends nothing, and the cursor still
   * moves to its `scannedTo`). The page that reaches the head also sends `caught-up` and
   * turns the subscription live in the same synchronous turn: no commit can land in between,
   * so the first live event is exactly the one after `caught-up`, and nothing committed
   * during catch-up is skipped or repeated.
   */
  private catchUp(ws: WebSocket, id: string): void {
    const state = this.sockets.load(ws);
    const sub = state?.subs.find((s) => s.id === id);
    if (!state?.claims || !sub || sub.live) return;
    if (hasExpired(state.claims)) {
      this.sockets.expire(ws, state);
      return;
    }
    const page = this.readAll(sub.cursor, CATCH_UP_PAGE, scopeOf(sub, state.claims));
    sub.cursor = Math.max(sub.cursor, page.scannedTo);
    if (page.events.length > 0) sendTo(ws, eventsMessage(sub, page.events));
    if (sub.cursor >= this.head) {
      sub.live = true;
      sendTo(ws, { type: 'caught-up', subscription: id, position: sub.cursor });
    } else {
      setTimeout(() => this.catchUp(ws, id), 0);
    }
    this.sockets.save(ws, state);
  }

  /** Sends freshly committed events to every live subscription; called after the commit. */
  private broadcast(firstPosition: number, fresh: CommitRequest[], recordedAt: string): void {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    // Envelopes are built only when someone listens: commits without subscribers skip the JSON work.
    const envelopes: EventEnvelope[] = [];
    let position = firstPosition;
    for (const request of fresh)
      for (const chunk of request.chunks) {
        envelopes.push(...unpackChunk(request.stream, { ...chunk, firstPosition: position, recordedAt }));
        position += chunk.count;
      }
    const now = Date.now() / 1000;
    for (const ws of sockets) {
      const state = this.sockets.load(ws);
      if (!state?.claims || state.subs.length === 0) continue;
      if (hasExpired(state.claims, now)) {
        this.sockets.expire(ws, state);
        continue;
      }
      for (const sub of state.subs) {
        if (!sub.live) continue;
        const message = liveMessage(sub, state.claims, envelopes, firstPosition, this.head);
        if (message === 'behind') {
          sub.live = false;
          setTimeout(() => this.catchUp(ws, sub.id), 0);
        } else if (message) sendTo(ws, message);
      }
      this.sockets.save(ws, state);
    }
  }
}
