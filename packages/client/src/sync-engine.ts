import type { Limits, WireError } from '@edgelog/core';
import type { Rejection } from './db.ts';
import { toPlainError } from './errors.ts';
import { PullAhead, type Pulled } from './pull-ahead.ts';
import { Requests } from './requests.ts';
import { retryAfterOf } from './retry-after.ts';
import { backoffDelay, classifyResults, planPush, toWireCommit } from './sync-plan.ts';
import type { SyncStore } from './sync-store.ts';
import type { LiveConnection, Transport } from './transport.ts';
import type { WireEvent } from './wire.ts';

/** What the engine reports; the worker merges it into the client's status. */
export interface EngineStatus {
  online: boolean;
  syncing: boolean;
  live: boolean;
  lastConfirmedPosition: number;
  head: number;
  lastError: WireError | undefined;
  catchUp: { processed: number; total: number };
}

export interface SyncEngineOptions {
  limits: Limits;
  /** Events per pull. Default 5,000 (the protocol's largest page: one record per page locally). */
  pullLimit?: number;
  /**
   * Most events a catch-up applies in one transaction: the pages that arrived while the last
   * group was written go in together (one record each), so projections write a row they
   * share once per group. It also bounds the pages fetched ahead (so about two groups of
   * events are in memory at once) and how long a local write may wait. Default 50,000.
   */
  pullGroup?: number;
  random?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  onStatus?: (status: EngineStatus) => void;
  onRejected?: (rejection: Rejection) => void;
  /**
   * A conflicting commit whose command this worker cannot decide again (it has not the
   * decider: another build of the app wrote it) now holds back its stream.
   */
  onUndecidable?: (error: WireError) => void;
  /** Open the WebSocket after catching up. Default true. */
  live?: boolean;
  /** Backoff after the first failure, ms (doubling up to `backoffCap`). Default 250. */
  backoffBase?: number;
  /** Default 30,000. */
  backoffCap?: number;
  /**
   * A push or a pull page without an answer after this long is given up (and retried with
   * backoff), ms. Default 60,000.
   */
  requestTimeoutMs?: number;
}

const MAX_ROUNDS = 50;

/**
 * The leader's sync loop: push the outbox (idempotent by commit and event ids), apply the
 * answers, replay conflicting commands, pull from the last confirmed position, then stay live
 * over the WebSocket. Failures back off with full jitter; `online` and new local writes wake it.
 */
export class SyncEngine {
  readonly #status: EngineStatus = {
    online: true,
    syncing: false,
    live: false,
    lastConfirmedPosition: 0,
    head: 0,
    lastError: undefined,
    catchUp: { processed: 0, total: 0 },
  };
  #running: Promise<void> | undefined;
  #again = false;
  #attempt = 0;
  #timer: unknown;
  #live: LiveConnection | undefined;
  #stopped = false;
  #chain: Promise<unknown> = Promise.resolve();
  /** Pushes and pull pages: timeouts, and abandoned on stop and offline (requests.ts). */
  readonly #requests: Requests;
  /** Live connections that ended before the server said anything: their own backoff. */
  #liveAttempt = 0;
  /**
   * Streams whose first pending command this worker has no decider for (another build of
   * the app), with that commit: the stream's commits wait, in order, for a worker that has
   * the decider (or for a pull that shows the command landed after all); the rest sync.
   */
  readonly #blocked = new Map<string, { commitId: string; error: WireError }>();
  readonly #random: () => number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (handle: unknown) => void;

  constructor(
    private readonly store: SyncStore,
    private readonly transport: Transport,
    private readonly options: SyncEngineOptions,
  ) {
    this.#random = options.random ?? Math.random;
    this.#requests = new Requests(options.requestTimeoutMs ?? 60_000);
    this.#setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.#clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  #delay(): number {
    return backoffDelay(this.#attempt++, this.#random, this.options.backoffBase, this.options.backoffCap);
  }

  get status(): EngineStatus {
    return { ...this.#status, catchUp: { ...this.#status.catchUp } };
  }

  #emit(patch: Partial<EngineStatus>): void {
    Object.assign(this.#status, patch);
    this.options.onStatus?.(this.status);
  }

  /** Runs store work one at a time: the loop and live events never interleave. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(fn, fn);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  async start(): Promise<void> {
    const meta = await this.store.meta();
    this.#emit({ lastConfirmedPosition: meta.pulled, head: meta.head });
    this.kick();
  }

  setOnline(online: boolean): void {
    this.#emit({ online });
    if (online) {
      this.#attempt = 0;
      this.kick();
    } else {
      this.#requests.abandon('offline');
      this.#closeLive();
    }
  }

  /** Something changed (a local write, the network came back): sync now. */
  kick(): void {
    if (this.#stopped || !this.#status.online) return;
    if (this.#timer !== undefined) {
      this.#clearTimer(this.#timer);
      this.#timer = undefined;
    }
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#loop().finally(() => {
      this.#running = undefined;
    });
  }

  /** Resolves when the current round (if any) has finished. */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#requests.abandon('the sync engine stopped');
    this.#closeLive();
    await this.settled();
    await this.#chain;
  }

  async #loop(): Promise<void> {
    do {
      this.#again = false;
      this.#emit({ syncing: true });
      try {
        await this.#serial(() => this.#round());
        this.#attempt = 0;
        this.#requests.succeeded();
        // A command waiting for its decider is not a failure, but status keeps saying why.
        this.#emit({ syncing: false, lastError: this.#blocked.values().next().value?.error });
        this.#openLive();
      } catch (e) {
        this.#emit({ syncing: false, lastError: toPlainError(e) });
        this.#closeLive();
        if (this.#stopped || !this.#status.online) return;
        // A server that is slowing this store down says for how long (429 Retry-After).
        const delay = Math.max(this.#delay(), retryAfterOf(e));
        this.#timer = this.#setTimer(() => {
          this.#timer = undefined;
          this.kick();
        }, delay);
        return;
      }
    } while (this.#again && !this.#stopped && this.#status.online);
  }

  async #round(): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const progressed = await this.#pushOnce();
      if (!progressed) break;
    }
    await this.#pullToHead();
    // Appends may have landed while pulling; a last push keeps latency low.
    if ((await this.#sendable()).length > 0) this.#again = true;
  }

  /** The outbox without the commits of blocked streams. */
  async #sendable(): Promise<Awaited<ReturnType<SyncStore['outbox']>>> {
    const outbox = await this.store.outbox();
    if (this.#blocked.size === 0) return outbox;
    // A stream whose waiting commit left the outbox (a pull showed it landed) moves again.
    const waiting = new Set(outbox.map((c) => c.commit.commitId));
    for (const [stream, { commitId }] of this.#blocked)
      if (!waiting.has(commitId)) this.#blocked.delete(stream);
    return outbox.filter((c) => !this.#blocked.has(c.commit.stream));
  }

  /** One push; false when the outbox is empty or nothing can move until later. */
  async #pushOnce(): Promise<boolean> {
    const outbox = await this.#sendable();
    if (outbox.length === 0) return false;
    const batch = planPush(outbox, this.#requests.budget(this.options.limits));
    const commits = batch.map(toWireCommit);
    const response = await this.#requests.run((signal) => this.transport.push(commits, signal));
    const outcome = classifyResults(batch, response.results);
    await this.store.applyAcks(outcome.acks);
    for (const r of outcome.rejected) {
      const rejection = await this.store.reject(r.commitId, r.error);
      if (rejection) this.options.onRejected?.(rejection);
    }
    let stale = false;
    if (outcome.conflicts.length > 0) {
      await this.#pullToHead();
      const streams = new Map(batch.map((c) => [c.commit.commitId, c.commit.stream]));
      for (const c of outcome.conflicts) {
        const stream = streams.get(c.commitId) ?? '';
        // Later commits of a blocked stream were decided on the waiting one: they wait too.
        if (this.#blocked.has(stream)) continue;
        const result = await this.store.replay(c.commitId, c.version);
        if (result.kind === 'rejected') this.options.onRejected?.(result.rejection);
        if (result.kind === 'stale') stale = true;
        if (result.kind === 'undecidable') {
          this.#blocked.set(stream, { commitId: c.commitId, error: result.error });
          this.options.onUndecidable?.(result.error);
        }
      }
    }
    if (stale)
      throw Object.assign(new Error('the server log is behind a conflict answer; retrying'), {
        code: 'Timeout',
      });
    return outcome.acks.length + outcome.rejected.length + outcome.conflicts.length > 0;
  }

  async #pullToHead(): Promise<void> {
    const limit = this.#requests.part(this.options.pullLimit ?? 5000);
    const group = Math.max(limit, this.options.pullGroup ?? 50_000);
    let after = (await this.store.meta()).pulled;
    const start = after;
    // The next pages travel while these are written; the pages that have arrived by the time
    // a write ends are applied together, in one transaction.
    const ahead = new PullAhead(
      (from) => this.#requests.run((signal) => this.transport.pull(from, limit, signal)),
      limit,
      group,
      after,
    );
    try {
      for (;;) {
        const pages = await ahead.take(group);
        if (pages.length === 0) return;
        const lastPage = pages.at(-1)!;
        // Whether the server holds more after the last page.
        const more = lastPage.coveredTo < lastPage.head;
        const head = Math.max(...pages.map((p) => p.head));
        const last = lastPage.coveredTo;
        // Pages with no events still move the cursor when they covered positions (a sparse
        // read for a stream-limited token): they are applied too.
        const reached = last > after ? await this.#applyPages(pages, head) : after;
        const total = Math.max(head - start, 0);
        this.#emit({
          lastConfirmedPosition: reached,
          head: Math.max(head, reached),
          catchUp: { processed: Math.min(reached - start, total), total },
        });
        if (!more || reached === after) return;
        if (reached !== last) ahead.restart(reached);
        after = reached;
      }
    } finally {
      ahead.close();
    }
  }

  async #applyPages(pages: readonly Pulled[], head: number): Promise<number> {
    const { reached, rejected } = await this.store.applyPulledPages(pages, head);
    for (const r of rejected) this.options.onRejected?.(r);
    return reached;
  }

  #openLive(): void {
    if (this.options.live === false || this.#live || this.#stopped || !this.#status.online) return;
    const conn = this.transport.live(this.#status.lastConfirmedPosition, {
      onEvents: (events, cover) => {
        this.#liveAttempt = 0;
        void this.#serial(() => this.#applyLive(events, cover));
      },
      onHead: (head) => {
        this.#liveAttempt = 0;
        if (head > this.#status.lastConfirmedPosition) this.kick();
      },
      onClose: () => {
        if (this.#live !== conn) return;
        this.#live = undefined;
        this.#emit({ live: false });
        if (this.#stopped || !this.#status.online) return;
        // A connection refused at once (its token, say) backs off on its own count: the HTTP
        // rounds in between succeed and would reset the shared one every time.
        const delay = backoffDelay(
          this.#liveAttempt++,
          this.#random,
          this.options.backoffBase,
          this.options.backoffCap,
        );
        this.#timer ??= this.#setTimer(() => {
          this.#timer = undefined;
          this.kick();
        }, delay);
      },
    });
    this.#live = conn;
    this.#emit({ live: true });
  }

  #closeLive(): void {
    const conn = this.#live;
    this.#live = undefined;
    conn?.close();
    if (this.#status.live) this.#emit({ live: false });
  }

  /**
   * Applies a live message. One that the server says left events out and holds every event
   * the subscription sees in (`after`, `coveredTo`], and that comes after exactly the local
   * cursor, is applied whole, the cursor moving to `coveredTo` over the positions the token
   * may not see, so a scoped client needs no pull per live event (the check is `pageTail`'s,
   * inside the transaction: a reordered, repeated or lost message cannot move the cursor over
   * a hole). Otherwise the events are applied while their positions run on, and a gap means a
   * pull.
   */
  async #applyLive(
    events: WireEvent[],
    cover: { after: number; coveredTo: number } | undefined,
  ): Promise<void> {
    const before = this.#status.lastConfirmedPosition;
    const last = Math.max(events.at(-1)?.position ?? before, cover?.coveredTo ?? before);
    if (last <= before) return;
    try {
      const head = Math.max(this.#status.head, last);
      const page = cover ? { events, ...cover, filtered: true } : { events };
      const { reached, rejected } = await this.store.applyPulledPages([page], head);
      for (const r of rejected) this.options.onRejected?.(r);
      this.#emit({ lastConfirmedPosition: reached, head: Math.max(head, reached) });
      // A gap (the message did not follow the cursor, or our own events arrived): pull.
      if (reached < last) this.kick();
    } catch (e) {
      this.#emit({ lastError: toPlainError(e) });
      this.kick();
    }
  }
}
