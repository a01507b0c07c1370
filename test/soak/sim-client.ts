// The IndexedDB globals (IDBRequest, IDBKeyRange, ...) idb relies on; each client still opens its own factory.
import 'fake-indexeddb/auto';
import { HttpTransport, WorkerCore } from '@edgelog/client/worker';
import type { ExpectedVersion } from '@edgelog/core';
import { IDBFactory } from 'fake-indexeddb';
import WebSocket from 'ws';
import type { ClientView, Op } from './checker.ts';
import { account } from './domain.ts';

/** Where a simulated client sends its traffic and writes down what it did. */
export interface ClientContext {
  url: string;
  store: string;
  token: string;
  /** Shared account streams: every client executes deposits and withdrawals on them. */
  accounts: string[];
  /** A shared stream that raw appends write with the version they last saw (they can conflict). */
  board: string;
  record(op: Op): void;
  /** Local calls that threw something other than a refusal (nothing was written). */
  localError(client: string, error: unknown): void;
}

/** Requests that hang (a server killed mid-request) are abandoned, as a browser eventually would. */
const fetchWithTimeout: typeof fetch = (input, init) =>
  fetch(input, { ...init, signal: AbortSignal.timeout(20_000) });

/**
 * One simulated app instance: the real client SDK (`WorkerCore`: local log, sync engine,
 * HTTP transport and WebSocket) in Node, over its own fake-indexeddb factory, so that a
 * "reload" reopens the same database and no two clients share one.
 */
export class SimClient {
  readonly #factory = new IDBFactory();
  readonly #dbName: string;
  #core: WorkerCore | undefined;
  /** What an app's view folded from `subscribe` holds: events in, withdrawals out. */
  #folded = new Set<string>();
  #online = true;
  #opened = 0;
  #seq = 0;

  constructor(
    readonly name: string,
    private readonly ctx: ClientContext,
    private readonly random: () => number,
  ) {
    this.#dbName = `soak-${name}`;
  }

  get online(): boolean {
    return this.#online;
  }

  get core(): WorkerCore {
    if (!this.#core) throw new Error(`${this.name} is not open`);
    return this.#core;
  }

  /** Opens the client's database (again, after a reload) and starts syncing if online. */
  async open(): Promise<void> {
    const core = new WorkerCore({
      deciders: { account },
      transport: (o, token) =>
        new HttpTransport(
          o.url,
          o.store,
          token,
          fetchWithTimeout,
          (u) => new WebSocket(u) as unknown as globalThis.WebSocket,
        ),
      engine: { backoffBase: 25, backoffCap: 2_000, random: this.random },
    });
    // idb opens through the global factory, synchronously inside init(): point it at ours.
    const global = globalThis as { indexedDB: IDBFactory };
    const previous = global.indexedDB;
    global.indexedDB = this.#factory;
    let ready: Promise<unknown>;
    try {
      ready = core.init({
        url: this.ctx.url,
        store: this.ctx.store,
        dbName: this.#dbName,
        online: this.#online,
        token: this.ctx.token,
      });
    } finally {
      global.indexedDB = previous;
    }
    await ready;
    const folded = new Set<string>();
    await core.subscribe(
      {},
      (events) => {
        for (const e of events) folded.add(e.id);
      },
      (withdrawn) => {
        for (const w of withdrawn) folded.delete(w.id);
      },
    );
    this.#folded = folded;
    this.#core = core;
    this.#opened++;
  }

  /** Closes the worker (writes in flight finish) and opens the same database again: I9. */
  async reload(): Promise<void> {
    const core = this.#core;
    this.#core = undefined;
    await core?.close();
    await this.open();
  }

  setOnline(online: boolean): void {
    this.#online = online;
    this.#core?.setOnline(online);
  }

  #opId(): string {
    return `${this.name}-${++this.#seq}`;
  }

  /** One random action of an app user. */
  async step(): Promise<void> {
    const r = this.random();
    if (r < 0.4) return this.#execute();
    if (r < 0.6) return this.#append(`priv-${this.name}`, 'any');
    if (r < 0.75) {
      const version = await this.core.readStream(this.ctx.board, { direction: 'backward', limit: 1 }).then(
        (r) => r.version,
        (e: { code?: string }) => {
          if (e.code === 'StreamNotFound') return 0;
          throw e;
        },
      );
      return this.#append(this.ctx.board, version === 0 ? 'no_stream' : version);
    }
    if (r < 0.95) return this.setOnline(!this.#online || this.random() < 0.5);
    return this.reload();
  }

  /** An offline backlog: `n` appends (one commit each) made offline, pushed at once when back online. */
  async backlog(n: number): Promise<void> {
    this.setOnline(false);
    for (let i = 0; i < n; i++) await this.#append(`priv-${this.name}`, 'any');
  }

  async #execute(): Promise<void> {
    const stream = this.ctx.accounts[Math.floor(this.random() * this.ctx.accounts.length)]!;
    const kind = this.random() < 0.55 ? 'deposit' : 'withdraw';
    const amount = 1 + Math.floor(this.random() * (kind === 'deposit' ? 5 : 9));
    const id = this.#opId();
    const op: Op = { id, client: this.name, kind: 'execute', stream, status: 'unknown', eventIds: [] };
    try {
      const result = await this.core.execute('account', stream, { kind, amount, op: id });
      op.status = 'ok';
      op.eventIds = result.events.map((e) => e.id);
    } catch (e) {
      op.status = 'fail';
      if ((e as { code?: unknown }).code !== 'CommandRejected') this.ctx.localError(this.name, e);
    }
    this.ctx.record(op);
  }

  async #append(stream: string, expectedVersion: ExpectedVersion): Promise<void> {
    const id = this.#opId();
    const eventId = crypto.randomUUID();
    const op: Op = { id, client: this.name, kind: 'append', stream, status: 'unknown', eventIds: [eventId] };
    try {
      await this.core.append(
        stream,
        [{ id: eventId, type: 'Noted', data: { text: `${id} by ${this.name}` }, metadata: { op: id } }],
        { expectedVersion },
      );
      op.status = 'ok';
    } catch (e) {
      // A local conflict (another write landed since the version was read) stores nothing.
      op.status = 'fail';
      if ((e as { code?: unknown }).code !== 'WrongExpectedVersion') this.ctx.localError(this.name, e);
    }
    this.ctx.record(op);
  }

  /** Pending commits and the last server position applied, after one sync round. */
  async sync(): Promise<{ pending: number; position: number }> {
    const s = await this.core.syncNow();
    return { pending: s.pending, position: s.lastConfirmedPosition };
  }

  /** Everything the checker needs from this client: its whole local log and its rejections. */
  async view(): Promise<ClientView> {
    const events: ClientView['events'] = [];
    for (let after = 0; ; ) {
      const page = await this.core.readAll({ after, limit: 5_000 });
      for (const e of page.events)
        events.push({
          id: e.id,
          stream: e.stream,
          version: e.version,
          serverPosition: e.serverPosition,
          pending: e.pending,
        });
      if (page.scannedTo >= page.head) break;
      after = page.scannedTo;
    }
    // The subscription hears of the last writes in the next task or so.
    const ids = new Set(events.map((e) => e.id));
    for (let i = 0; i < 100; i++) {
      if (this.#folded.size === ids.size && [...ids].every((id) => this.#folded.has(id))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const rejections = (await this.core.rejections()).map((r) => ({
      commitId: r.commitId,
      stream: r.stream,
      eventIds: r.eventIds,
      command: r.command,
    }));
    return { name: this.name, events, rejections, subscribed: [...this.#folded] };
  }

  get reloads(): number {
    return Math.max(this.#opened - 1, 0);
  }

  async close(): Promise<void> {
    await this.#core?.close();
    this.#core = undefined;
  }
}
