import type {
  Decider,
  EventRegistry,
  ExpectedVersion,
  Limits,
  ProjectionDefinition,
  ReadAllOptions,
  SnapshotPolicy,
  SubscribeOptions,
} from '@edgelog/core';
import { randomId } from '@edgelog/core';
import { ClientProjections, type ProjectionQuery, type ProjectionStatus } from './client-projections.ts';
import { type CommandHost, execute } from './commands.ts';
import { Compactor } from './compaction.ts';
import { type Durability, openLogDb, type Rejection } from './db.ts';
import { type LocalEnvelope, toEnvelope } from './envelope.ts';
import { ClientError, toPlainError } from './errors.ts';
import { Leadership, type Lease } from './leadership.ts';
import { defaultClientLimits } from './local-event-store.ts';
import { type LocalAppendOptions, type LocalAppendResult, LocalLog, type ReadOptions } from './local-log.ts';
import { LocalSubscription } from './local-subscription.ts';
import { ProjectionRunner } from './projections.ts';
import { type ClientStatus, initialStatus, type RejectionNotice, type Withdrawal } from './status.ts';
import { SyncEngine, type SyncEngineOptions } from './sync-engine.ts';
import type { ReplayDecider } from './sync-plan.ts';

export type { ProjectionQuery, ProjectionStatus } from './client-projections.ts';

import { SyncStore } from './sync-store.ts';
import { TabChannel } from './tab-channel.ts';
import { HttpTransport, type TokenSource, type Transport } from './transport.ts';

// biome-ignore lint/suspicious/noExplicitAny: a registry of deciders of any command, event and state types
export type AnyDecider = Decider<any, any, any>;
// biome-ignore lint/suspicious/noExplicitAny: a list of projections of any state type
export type AnyProjection = ProjectionDefinition<any, any>;

/** What a worker is built with: the code that cannot cross `postMessage`. */
export interface WorkerSetup {
  /** Deciders by name, for `execute` and for replaying commands after a conflict. */
  deciders?: Readonly<Record<string, AnyDecider>>;
  /** Client projections, updated in the same transaction as the events. */
  projections?: readonly AnyProjection[];
  /** Validates appended event data and upcasts stored events on read (core's `eventRegistry`). */
  registry?: EventRegistry;
  limits?: Partial<Limits>;
  /** Replaces the HTTP/WebSocket transport (tests inject faults here). */
  transport?: (options: InitOptions, token: TokenSource) => Transport;
  /** Aggregate snapshot policies by decider name (core's `SnapshotPolicy`). */
  snapshots?: Readonly<Record<string, SnapshotPolicy>>;
  /** Tuning of the sync engine (backoff, pull page size, request timeout, randomness). */
  engine?: Pick<
    SyncEngineOptions,
    'backoffBase' | 'backoffCap' | 'pullLimit' | 'pullGroup' | 'random' | 'requestTimeoutMs'
  >;
  /**
   * How long after a sync write the syncing tab merges small settled records (see Compactor).
   * Default 250 ms.
   */
  compactDelayMs?: number;
}

export interface InitOptions {
  /** Base URL of the edgelog server, e.g. `https://api.example.com`. */
  url: string;
  store: string;
  /** IndexedDB database name. Default `edgelog:<store>`. */
  dbName?: string;
  /** The page's `navigator.onLine`. */
  online?: boolean;
  /** A fixed token, when the page gives no `getToken`. */
  token?: string;
  /** Open the WebSocket. Default true. */
  live?: boolean;
  /** Do not sync at all (local-only). Default false. */
  sync?: boolean;
  /** The durability hint of the local log's write transactions. Default `'default'`. */
  durability?: Durability;
}

export interface AppendInput {
  id?: string;
  type: string;
  data: unknown;
  schemaVersion?: number;
  metadata?: Record<string, unknown>;
}

export interface ExecuteResult extends LocalAppendResult {
  /** The events the command caused (none when the decider decided nothing). */
  events: LocalEnvelope[];
}

type Callback<T> = (value: T) => void;

const notice = (r: Rejection): RejectionNotice => {
  const n: RejectionNotice = {
    commitId: r.commitId,
    stream: r.stream,
    error: r.error,
    eventIds: r.events.map((e) => e.id),
    at: r.at,
  };
  if (r.command) n.command = r.command;
  return n;
};

/**
 * Everything the worker does, without comlink: the local log, `execute`, subscriptions,
 * projections, status, leader election and the sync engine. `worker.ts` exposes it.
 */
export class WorkerCore {
  #log!: LocalLog;
  #sync!: SyncStore;
  #compactor: Compactor | undefined;
  #engine: SyncEngine | undefined;
  #projections: ProjectionRunner;
  #status: ClientStatus = initialStatus(true);
  #tabs: TabChannel | undefined;
  #abort = new AbortController();
  #leadership: Leadership | undefined;
  #options!: InitOptions;
  #token: TokenSource | undefined;
  #closed = false;
  /** Set when a newer version of the app took the database (see #stepAside). */
  #replaced: { code: 'Closed'; message: string } | undefined;
  #nextId = 1;
  #views!: ClientProjections;
  readonly #subscribers = new Map<number, LocalSubscription>();
  readonly #statusListeners = new Map<number, Callback<ClientStatus>>();
  readonly #rejectionListeners = new Map<number, Callback<RejectionNotice>>();
  #pendingRefresh: Promise<void> | undefined;
  #notify: { tail: number; local: boolean; kick: boolean } | undefined;
  #pendingDirty = false;
  #lastCount = 0;
  #statusTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #limits: Limits;

  constructor(private readonly setup: WorkerSetup = {}) {
    this.#limits = { ...defaultClientLimits, ...setup.limits };
    const registry = setup.registry;
    this.#projections = new ProjectionRunner(
      setup.projections ?? [],
      registry ? (e) => registry.upcast(e) : undefined,
    );
  }

  #upcast = (e: LocalEnvelope): LocalEnvelope => (this.setup.registry ? this.setup.registry.upcast(e) : e);
  readonly #commands: CommandHost = {
    deciders: () => this.setup.deciders,
    snapshots: () => this.setup.snapshots,
    log: () => this.#log,
    prepare: (e) => this.#prepare(e),
    upcast: (e) => this.#upcast(e),
    counted: (r) => this.#counted(r),
  };

  async init(options: InitOptions, getToken?: TokenSource): Promise<ClientStatus> {
    this.#options = options;
    this.#token =
      getToken ??
      (options.token !== undefined
        ? async () => options.token!
        : async () => {
            throw new ClientError('Unauthorized', 'no token and no getToken');
          });
    this.#status = initialStatus(options.online ?? true);
    const name = options.dbName ?? `edgelog:${options.store}`;
    const db = await openLogDb(name, () => void this.#stepAside());
    const durability = options.durability ?? 'default';
    this.#log = new LocalLog(
      db,
      this.#limits,
      (tail) => this.#written(tail, true),
      this.#projections,
      undefined,
      durability,
    );
    // The sync engine's own writes need no new round: only the log cache and the others hear of them.
    // They are also what settles records, which the compactor then merges.
    this.#compactor = new Compactor(db, this.setup.compactDelayMs);
    const onWrite = (tail: number) => {
      this.#log.invalidate();
      this.#written(tail, true, false);
      this.#compactor?.schedule();
    };
    const registry = this.setup.registry;
    const deps: ConstructorParameters<typeof SyncStore>[1] = {
      projections: this.#projections,
      deciders: (this.setup.deciders ?? {}) as Record<string, ReplayDecider>,
      onWrite,
      onWithdrawn: (list) => this.#withdrawn(list, true),
      durability,
    };
    if (registry) {
      deps.upcast = (e) => registry.upcast(e);
      deps.validate = (e) => registry.validate(e);
    }
    this.#sync = new SyncStore(db, deps);
    this.#views = new ClientProjections(this.#projections, db, () => !this.#closed && !this.#replaced);
    // A new projection version folds the log it has not seen before the first append.
    await Promise.all([this.#views.catchUp(), this.#log.warm()]);
    this.#tabs = new TabChannel(name, {
      write: (tail) => {
        this.#log.invalidate();
        this.#written(tail, false);
        // A tab running another build may write without this worker's projections.
        this.#views.catchUpLater();
      },
      status: (status) => {
        if (this.#status.leader) return;
        const { leader: _leader, online: _online, pending: _pending, ...sync } = status;
        this.#setStatus(sync);
      },
      rejected: (n) => this.#rejected(n),
      withdrawn: (list) => this.#withdrawn(list, false),
      current: () => this.#status,
    });
    await this.#refreshPending();
    if (options.sync !== false) {
      this.#leadership = new Leadership(name, this.#abort.signal, {
        done: () => this.#closed || this.#replaced !== undefined,
        lead: (lease) => void this.#lead(lease),
        stopLeading: async () => {
          const engine = this.#engine;
          this.#engine = undefined;
          await engine?.stop();
          this.#setStatus({ leader: false, syncing: false, live: false });
        },
        peers: () => this.#tabs?.peers ?? false,
      });
      this.#leadership.elect();
    }
    return this.status();
  }

  /**
   * A newer version of the app (another tab) upgrades the database, which this tab has closed:
   * it stops syncing, hands leadership on (the new tab syncs), refuses writes, and says why.
   */
  async #stepAside(): Promise<void> {
    const why = {
      code: 'Closed',
      message: 'a newer version of the app upgraded the local database: reload this tab',
    } as const;
    this.#replaced = why;
    this.#setStatus({ lastError: why, leader: false, syncing: false, live: false });
    // The new version's tabs talk among themselves: their status must not overwrite ours.
    this.#tabs?.close();
    void this.#log?.close();
    void this.#compactor?.close();
    await this.#leadership?.quiet();
    await this.#engine?.stop();
    this.#leadership?.release();
    this.#abort.abort();
  }

  /** Syncs while `lease` holds the lock (see Leadership). */
  async #lead(lease: Lease): Promise<void> {
    if (this.#closed || this.#replaced) return;
    const token = this.#token!;
    const transport = this.setup.transport
      ? this.setup.transport(this.#options, token)
      : new HttpTransport(this.#options.url, this.#options.store, token);
    const engine = new SyncEngine(this.#sync, transport, {
      ...this.setup.engine,
      limits: this.#limits,
      live: this.#options.live ?? true,
      onStatus: (s) => {
        // A tab that stepped aside keeps saying why, and leads no more; nor does one that
        // handed the lock over.
        if (this.#replaced || !this.#leadership?.holds(lease)) return;
        this.#setStatus({ ...s, leader: true });
        void this.#refreshPending();
      },
      onRejected: (r) => {
        const n = notice(r);
        this.#rejected(n);
        this.#tabs?.tellRejected(n);
      },
      // The hand-over runs apart from the engine's round (after an await): it stops the
      // engine, which waits for that round to end.
      onUndecidable: () => this.#leadership?.cannotDecide(lease),
    });
    this.#engine = engine;
    // An engine starts online; telling it so would kick a round before start() kicks its own.
    if (!this.#status.online) engine.setOnline(false);
    this.#setStatus({ leader: true });
    await engine.start();
  }

  /**
   * Something was written: subscribers, other tabs, the sync engine and the outbox count hear
   * of it in the next task, once for everything written until then, so that the answer to the
   * write that caused it goes out first.
   */
  #written(tail: number, local: boolean, kick = true): void {
    this.#tabs?.wrote(tail);
    const pending = this.#notify;
    if (pending) {
      pending.tail = Math.max(pending.tail, tail);
      pending.local ||= local;
      pending.kick ||= kick;
      return;
    }
    this.#notify = { tail, local, kick };
    setTimeout(() => {
      const n = this.#notify!;
      this.#notify = undefined;
      for (const s of this.#subscribers.values()) s.wake();
      if (n.local) this.#tabs?.tellWrite(n.tail);
      if (n.kick) this.#engine?.kick();
      void this.#refreshPending();
    }, 0);
  }

  /** Pending events left the log (here, or in another tab when `local` is false). */
  #withdrawn(list: Withdrawal[], local: boolean): void {
    if (local) this.#tabs?.tellWithdrawn(list);
    for (const s of this.#subscribers.values()) s.withdrawn(list);
  }

  #rejected(n: RejectionNotice): void {
    this.#setStatus({ lastRejection: n });
    for (const l of this.#rejectionListeners.values()) l(n);
    for (const s of this.#subscribers.values()) s.wake();
  }

  /**
   * Recounts the outbox, at most every 200 ms (a count walks the index): appends count
   * themselves at once, and the recount corrects what other tabs and the sync engine changed.
   */
  #refreshPending(): Promise<void> {
    this.#pendingDirty = true;
    this.#pendingRefresh ??= (async () => {
      while (this.#pendingDirty && !this.#closed) {
        const wait = this.#lastCount + 200 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.#pendingDirty = false;
        this.#lastCount = Date.now();
        const pending = await this.#sync.pendingCount();
        if (pending !== this.#status.pending) this.#setStatus({ pending });
      }
    })()
      .catch(() => undefined)
      .finally(() => {
        this.#pendingRefresh = undefined;
      });
    return this.#pendingRefresh;
  }

  #setStatus(patch: Partial<ClientStatus>): void {
    this.#status = { ...this.#status, ...patch };
    // Listeners (the page, other tabs) hear at most one change per frame, always the latest.
    this.#statusTimer ??= setTimeout(() => {
      this.#statusTimer = undefined;
      if (this.#closed) return;
      if (this.#status.leader) this.#tabs?.tellStatus(this.#status);
      for (const l of this.#statusListeners.values()) l(this.#status);
    }, 16);
  }

  /** Merges small settled records now (the syncing tab does it after its writes); resolves with how many records went. */
  compact(): Promise<number> {
    return this.#compactor?.compact() ?? Promise.resolve(0);
  }

  status(): ClientStatus {
    return this.#status;
  }

  // ---- the app's operations ------------------------------------------------------------

  /**
   * `textChars`: the length of a JSON text that holds `events` (the page's message), which
   * bounds their size without serialising them again.
   */
  async append(
    stream: string,
    events: readonly AppendInput[],
    options: { expectedVersion?: ExpectedVersion } = {},
    textChars?: number,
  ): Promise<LocalAppendResult> {
    if (!Array.isArray(events)) return this.#log.append(stream, events);
    const prepared = events.map((e) => this.#prepare(e));
    // Ids made here are new; the ones the app gave are checked (a retry may bring them again).
    const freshIds = events.every((e) => e?.id === undefined);
    const opts: LocalAppendOptions = { freshIds };
    if (options?.expectedVersion !== undefined) opts.expectedVersion = options.expectedVersion;
    // An id added here lengthens an event's text by `,"id":"<36 characters>"` (44); a registry
    // may replace the data with its schema's output, which the page's text does not bound.
    if (textChars !== undefined && !this.setup.registry) opts.textBound = textChars + 44 * events.length;
    const result = await this.#log.append(stream, prepared, opts);
    this.#counted(result);
    return result;
  }

  /** Counts a new commit at once; the outbox count catches up asynchronously. */
  #counted(result: LocalAppendResult): void {
    if (!result.commitId) return;
    this.#setStatus({ pending: this.#status.pending + 1 });
    void this.#refreshPending();
  }

  #prepare(e: AppendInput): AppendInput & { id: string } {
    // Not an event: left for validation to name.
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return e as AppendInput & { id: string };
    const registry = this.setup.registry;
    const out: AppendInput & { id: string } = { ...e, id: e.id ?? randomId() };
    if (registry && typeof e.type === 'string') {
      const valid = registry.validate(e);
      out.data = valid.data;
      out.schemaVersion = valid.schemaVersion;
    }
    return out;
  }

  /** Loads the aggregate, decides, and appends as pending with the command remembered for replay. */
  execute(deciderName: string, stream: string, command: unknown): Promise<ExecuteResult> {
    return execute(this.#commands, deciderName, stream, command);
  }

  async readStream(
    stream: string,
    options: ReadOptions = {},
  ): Promise<{ events: LocalEnvelope[]; version: number }> {
    const r = await this.#log.readStream(stream, options);
    return { events: r.events.map((e) => this.#upcast(toEnvelope(e))), version: r.version };
  }

  async readAll(
    options: ReadAllOptions = {},
  ): Promise<{ events: LocalEnvelope[]; head: number; scannedTo: number }> {
    const r = await this.#log.readAll(options);
    return { events: r.events.map((e) => this.#upcast(toEnvelope(e))), head: r.head, scannedTo: r.scannedTo };
  }

  /**
   * Catch-up from `after` (a local position), then live; resolves with the subscription id once
   * caught up. `withdrawn` hears of pending events handed over that later left the log.
   */
  async subscribe(
    options: SubscribeOptions,
    handler: (events: LocalEnvelope[]) => unknown,
    withdrawn?: (withdrawn: Withdrawal[]) => unknown,
  ): Promise<number> {
    const id = this.#nextId++;
    const sub = new LocalSubscription(
      options,
      withdrawn ? { events: handler, withdrawn } : { events: handler },
      (after, limit) => this.readAll({ after, limit, ...(options.filter ? { filter: options.filter } : {}) }),
      () => this.#subscribers.delete(id),
    );
    this.#subscribers.set(id, sub);
    await sub.start();
    return id;
  }

  async unsubscribe(id: number): Promise<void> {
    await this.#subscribers.get(id)?.close();
  }

  onStatus(listener: Callback<ClientStatus>): number {
    const id = this.#nextId++;
    this.#statusListeners.set(id, listener);
    listener(this.#status);
    return id;
  }

  onRejected(listener: Callback<RejectionNotice>): number {
    const id = this.#nextId++;
    this.#rejectionListeners.set(id, listener);
    return id;
  }

  off(id: number): void {
    this.#statusListeners.delete(id);
    this.#rejectionListeners.delete(id);
  }

  async rejections(): Promise<RejectionNotice[]> {
    return (await this.#sync.rejections()).map(notice);
  }

  /** A client projection's row (the projection's newest version). */
  readProjection(name: string, key: string): Promise<unknown> {
    return this.#views.read(name, key);
  }

  /** Rows of a projection in key order, optionally under a key prefix. */
  queryProjection(
    name: string,
    options: ProjectionQuery = {},
  ): Promise<Array<{ key: string; state: unknown }>> {
    return this.#views.query(name, options);
  }

  /** Checkpoint, head of the local log and parked events of every client projection. */
  projectionStatus(): Promise<ProjectionStatus[]> {
    return this.#views.status();
  }

  setOnline(online: boolean): void {
    this.#setStatus({ online });
    this.#engine?.setOnline(online);
  }

  /** Starts a sync round now and resolves when it is over (tests, "sync" buttons). */
  async syncNow(): Promise<ClientStatus> {
    this.#engine?.kick();
    await this.#engine?.settled();
    await this.#refreshPending();
    return this.#status;
  }

  /** Waits for writes in flight, stops syncing and releases leadership. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#log?.close();
    this.#closed = true;
    await this.#leadership?.quiet();
    await this.#engine?.stop();
    await this.#compactor?.close();
    for (const s of [...this.#subscribers.values()]) await s.close();
    this.#leadership?.release();
    this.#abort.abort();
    this.#tabs?.close();
    await this.#views?.idle();
    this.#log?.db.close();
  }
}

/** Runs `fn` and turns whatever it throws into plain `{ code, message, details }` data. */
export async function plainErrors<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toPlainError(e);
  }
}
