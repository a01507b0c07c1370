import type {
  EventDefinition,
  EventInputOf,
  EventOf,
  ExpectedVersion,
  ReadAllOptions,
  SubscribeOptions,
} from '@edgelog/core';
import { proxy, type Remote, releaseProxy, wrap } from 'comlink';
import type { LocalEnvelope } from './envelope.ts';
import { ClientError, fromPlainError, validationError } from './errors.ts';
import { isLane, LANE } from './lane.ts';
import type { LocalAppendResult, ReadOptions } from './local-log.ts';
import { type ClientStatus, initialStatus, type RejectionNotice, type Withdrawal } from './status.ts';
import type { WorkerApi } from './worker.ts';
import type { AnyDecider, ProjectionQuery, ProjectionStatus } from './worker-core.ts';

type CommandOf<D> = D extends { decide: (command: infer C, state: never) => unknown } ? C : never;

export interface ClientOptions<
  Defs extends readonly EventDefinition[] = readonly EventDefinition[],
  Deciders extends Readonly<Record<string, AnyDecider>> = Readonly<Record<string, AnyDecider>>,
> {
  /** Base URL of the edgelog server. */
  url: string;
  /** The store (tenant event space). */
  store: string;
  /** A fixed bearer token. Give this or `getToken`. */
  token?: string;
  /** Returns a bearer token; called again with `refresh: true` after the server refused one. */
  getToken?: (refresh: boolean) => string | Promise<string>;
  /**
   * The dedicated worker that called `startWorker(...)` from `@edgelog/client/worker`, or a
   * factory / script URL for it. It must be created while online unless a service worker serves it.
   */
  worker: Worker | (() => Worker) | string | URL;
  /** Event definitions: they type `append`, `readStream` and `subscribe`. */
  events?: Defs;
  /** The deciders the worker was started with: they type `execute`. */
  deciders?: Deciders;
  /** IndexedDB database name. Default `edgelog:<store>`. */
  dbName?: string;
  /** Keep a WebSocket open for live events. Default true. */
  live?: boolean;
  /** Sync with the server at all. Default true. */
  sync?: boolean;
  /**
   * IndexedDB durability of the log's writes. `'default'` (the browser's; Chromium 121+ and
   * Firefox relax it) survives reloads, closed tabs and crashed browsers; `'strict'` also
   * survives an OS crash or power loss, at about 4 times the cost per write in Chromium.
   */
  durability?: 'default' | 'strict' | 'relaxed';
}

export interface AppendOptions {
  /** Default `'any'`. A numeric version that turns out stale on the server is reported rejected. */
  expectedVersion?: ExpectedVersion;
}

/** A value that changes over time. */
export interface Subscribable<T> {
  get(): T;
  /** Calls `listener` now and on every change; returns the unsubscribe function. */
  subscribe(listener: (value: T) => void): () => void;
}

export interface Client<
  Defs extends readonly EventDefinition[] = readonly EventDefinition[],
  Deciders extends Readonly<Record<string, AnyDecider>> = Readonly<Record<string, AnyDecider>>,
> {
  /** Appends as pending; resolves once the events are durable in IndexedDB (online or not). */
  append(
    stream: string,
    events: ReadonlyArray<EventInputOf<Defs> & { id?: string }>,
    options?: AppendOptions,
  ): Promise<LocalAppendResult>;
  /** Loads the aggregate, decides, appends as pending and remembers the command for replay. */
  execute<K extends keyof Deciders & string>(
    decider: K,
    stream: string,
    command: CommandOf<Deciders[K]>,
  ): Promise<LocalAppendResult & { events: Array<LocalEnvelope & EventOf<Defs>> }>;
  readStream(
    stream: string,
    options?: ReadOptions,
  ): Promise<{ events: Array<LocalEnvelope & EventOf<Defs>>; version: number }>;
  /** A page of the local log; the next one is after `scannedTo` (see core's `ReadAllResult`). */
  readAll(
    options?: ReadAllOptions,
  ): Promise<{ events: Array<LocalEnvelope & EventOf<Defs>>; head: number; scannedTo: number }>;
  /**
   * Catch-up from `after` (a local position), then live, in batches. Resolves once caught up.
   * `withdrawn` hears, after the event, of a pending event handed over that later left the
   * log: its commit was refused, or its command was decided again (new events replace it).
   */
  subscribe(
    options: SubscribeOptions,
    handler: (events: Array<LocalEnvelope & EventOf<Defs>>) => void | Promise<void>,
    withdrawn?: (withdrawn: Withdrawal[]) => void | Promise<void>,
  ): Promise<() => Promise<void>>;
  readProjection<T = unknown>(name: string, key: string): Promise<T | undefined>;
  /** Rows of a client projection in key order (optionally under a key prefix), pending events included. */
  queryProjection<T = unknown>(
    name: string,
    query?: ProjectionQuery,
  ): Promise<Array<{ key: string; state: T }>>;
  /** Each client projection's checkpoint against the local log's head, and its parked events. */
  projectionStatus(): Promise<ProjectionStatus[]>;
  status: Subscribable<ClientStatus>;
  /** Commands and appends the server refused for good (also in `status.lastRejection`). */
  onRejected(listener: (rejection: RejectionNotice) => void): () => void;
  rejections(): Promise<RejectionNotice[]>;
  /** Runs a sync round now (when this tab leads) and resolves when it is over. */
  syncNow(): Promise<ClientStatus>;
  /** Waits for local writes in flight (never for the network), then stops the worker. */
  close(): Promise<void>;
}

type AppendResults = Awaited<ReturnType<WorkerApi['appendMany']>>;

async function call<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fromPlainError(e);
  }
}

/** Starts the worker and returns the client. Nothing in it waits for the network. */
export function createClient<
  const Defs extends readonly EventDefinition[] = readonly EventDefinition[],
  Deciders extends Readonly<Record<string, AnyDecider>> = Readonly<Record<string, AnyDecider>>,
>(options: ClientOptions<Defs, Deciders>): Client<Defs, Deciders> {
  const w = options.worker;
  const worker =
    typeof w === 'function'
      ? w()
      : typeof w === 'string' || w instanceof URL
        ? new Worker(w, { type: 'module' })
        : w;
  const api: Remote<WorkerApi> = wrap<WorkerApi>(worker);
  const online = typeof navigator === 'undefined' ? true : navigator.onLine;
  let status: ClientStatus = initialStatus(online);
  const listeners = new Set<(s: ClientStatus) => void>();
  const rejectionListeners = new Set<(r: RejectionNotice) => void>();
  let closed = false;
  const getToken = options.getToken;
  const init: Record<string, unknown> = { url: options.url, store: options.store, online };
  if (options.token !== undefined) init.token = options.token;
  if (options.dbName !== undefined) init.dbName = options.dbName;
  if (options.live !== undefined) init.live = options.live;
  if (options.sync !== undefined) init.sync = options.sync;
  if (options.durability !== undefined) init.durability = options.durability;
  /** Whether the worker listens on the appends' lane (asked once it is ready). */
  let lane = false;
  const ready = call(
    api.init(init as never, getToken ? proxy(async (refresh: boolean) => getToken(refresh)) : undefined),
  ).then(async () => {
    // One round trip for the three: the worker answers them in order.
    await Promise.all([
      api.onStatus(
        proxy((s: ClientStatus) => {
          status = s;
          for (const l of listeners) l(s);
        }),
      ),
      api.onRejected(
        proxy((r: RejectionNotice) => {
          for (const l of rejectionListeners) l(r);
        }),
      ),
      // A worker that does not listen on the lane (one exposing `workerApi` by itself, or an
      // older script) is sent its appends through comlink, rather than never answering them.
      api.lane().then(
        (on) => {
          lane = on === true;
        },
        () => undefined,
      ),
    ]);
  });
  // Appends share the worker's channel with comlink, as tagged arrays that comlink ignores
  // (lane.ts, and `appendLane` in worker.ts), answered by id.
  let laneId = 0;
  const laneWaiting = new Map<
    number,
    { resolve: (r: AppendResults) => void; reject: (e: unknown) => void }
  >();
  worker.addEventListener('message', (m: MessageEvent<unknown>) => {
    if (!isLane(m.data)) return;
    const [, id, results, error] = m.data as [typeof LANE, number, AppendResults | undefined, unknown?];
    const waiting = laneWaiting.get(id);
    laneWaiting.delete(id);
    if (results) waiting?.resolve(results);
    else waiting?.reject(error);
  });
  /** Lane messages not yet answered: `close()` waits for them. */
  const inflight = new Set<Promise<unknown>>();
  const appendMany = async (text: string) => {
    await ready;
    const id = ++laneId;
    const answer = lane
      ? new Promise<AppendResults>((resolve, reject) => {
          laneWaiting.set(id, { resolve, reject });
          worker.postMessage([LANE, id, text]);
        })
      : api.appendMany(text);
    const settled = answer.catch(() => undefined);
    inflight.add(settled);
    void settled.then(() => inflight.delete(settled));
    return answer;
  };
  ready.catch(() => undefined);
  const whenReady = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) throw new ClientError('Closed', 'the client is closed');
    await ready;
    return call(fn());
  };
  // Appends issued in the same tick travel in one message and share one group commit.
  type AppendJob = {
    args: [string, unknown[], AppendOptions];
    resolve: (r: LocalAppendResult) => void;
    reject: (e: unknown) => void;
  };
  let queued: AppendJob[] = [];
  let lastFlush: Promise<void> = Promise.resolve();
  const flushAppends = () => {
    lastFlush = sendAppends();
    return lastFlush;
  };
  const sendAppends = async () => {
    let jobs = queued;
    queued = [];
    // The appends cross as one JSON text: cheaper than the structured clone of every event on
    // both threads, and JSON is what is stored and synced, so the worker sees what the server
    // and the other clients will. An append JSON cannot write (a BigInt, a cycle) fails alone.
    let text: string;
    try {
      text = JSON.stringify(jobs.map((j) => j.args));
    } catch {
      // Some append is not JSON: each is written alone, and those that fail are refused.
      const parts: string[] = [];
      jobs = jobs.filter((j) => {
        try {
          parts.push(JSON.stringify(j.args));
          return true;
        } catch (e) {
          j.reject(validationError('events', `events must be JSON data: ${(e as Error).message}`));
          return false;
        }
      });
      text = `[${parts.join(',')}]`;
    }
    if (jobs.length === 0) return;
    try {
      const results = await appendMany(text);
      results.forEach((r, i) => {
        if ('ok' in r) jobs[i]!.resolve(r.ok);
        else jobs[i]!.reject(fromPlainError(r.error));
      });
    } catch (e) {
      for (const j of jobs) j.reject(fromPlainError(e));
    }
  };
  const append = (stream: string, events: unknown[], opts: AppendOptions) =>
    whenReady(
      () =>
        new Promise<LocalAppendResult>((resolve, reject) => {
          queued.push({ args: [stream, events, opts], resolve, reject });
          if (queued.length === 1) queueMicrotask(() => void flushAppends());
        }),
    );
  const onNetwork = () => void api.setOnline(navigator.onLine);
  if (typeof addEventListener === 'function') {
    addEventListener('online', onNetwork);
    addEventListener('offline', onNetwork);
  }

  return {
    append: (stream, events, opts = {}) => append(stream, events as unknown[], opts),
    execute: (decider, stream, command) => whenReady(() => api.execute(decider, stream, command)) as never,
    readStream: async (stream, opts = {}) => {
      const r = await whenReady(() => api.readStream(stream, opts));
      return { events: JSON.parse(r.events), version: r.version };
    },
    readAll: async (opts = {}) => {
      const r = await whenReady(() => api.readAll(opts));
      return { events: JSON.parse(r.events), head: r.head, scannedTo: r.scannedTo };
    },
    subscribe: async (opts, handler, withdrawn) => {
      const events = proxy(handler as (e: LocalEnvelope[]) => unknown);
      const id = await whenReady(() =>
        withdrawn ? api.subscribe(opts, events, proxy(withdrawn)) : api.subscribe(opts, events),
      );
      return () => call(api.unsubscribe(id));
    },
    readProjection: (name, key) => whenReady(() => api.readProjection(name, key)) as never,
    queryProjection: (name, query = {}) => whenReady(() => api.queryProjection(name, query)) as never,
    projectionStatus: () => whenReady(() => api.projectionStatus()),
    status: {
      get: () => status,
      subscribe(listener) {
        listeners.add(listener);
        listener(status);
        return () => listeners.delete(listener);
      },
    },
    onRejected(listener) {
      rejectionListeners.add(listener);
      return () => rejectionListeners.delete(listener);
    },
    rejections: () => whenReady(() => api.rejections()),
    syncNow: () => whenReady(() => api.syncNow()),
    async close() {
      if (closed) return;
      await ready.catch(() => undefined);
      // Appends issued before close() (and while it waits) go out and are answered first: the
      // worker is terminated once its close answers, and an answer still on its way is lost.
      await Promise.resolve();
      while (queued.length > 0 || inflight.size > 0) {
        if (queued.length > 0) await flushAppends();
        else await Promise.all(inflight);
      }
      await lastFlush;
      closed = true;
      if (typeof removeEventListener === 'function') {
        removeEventListener('online', onNetwork);
        removeEventListener('offline', onNetwork);
      }
      try {
        await call(api.close());
      } finally {
        for (const w of laneWaiting.values()) w.reject(new ClientError('Closed', 'the client is closed'));
        laneWaiting.clear();
        api[releaseProxy]();
        worker.terminate();
      }
    },
  };
}
