import type {
  AppendOptions,
  AppendResult,
  EventHandler,
  EventStore,
  Limits,
  NewEvent,
  ReadAllOptions,
  ReadAllResult,
  ReadStreamOptions,
  ReadStreamResult,
  SubscribeOptions,
  Subscription,
} from '@edgelog/core';
import { Subscriber } from '@edgelog/core';
import type { LogDb } from './db.ts';
import { toEnvelope } from './envelope.ts';
import { LocalLog } from './local-log.ts';

export const defaultClientLimits: Readonly<Limits> = Object.freeze({
  maxEventBytes: 64 * 1024,
  maxEventsPerAppend: 1000,
  maxRequestBytes: 4 * 1024 * 1024,
  maxCommitsPerPush: 100,
  defaultPageSize: 500,
  maxPageSize: 5000,
  maxScanPerRead: 10_000,
});

/** The local log as a core `EventStore`; positions are local positions. */
export class LocalEventStore implements EventStore {
  readonly log: LocalLog;
  readonly #subscribers = new Set<Subscriber>();

  constructor(db: LogDb, limits: Partial<Limits> = {}, onWrite?: (tail: number) => void) {
    this.log = new LocalLog(db, { ...defaultClientLimits, ...limits }, (tail) => {
      this.wake();
      onWrite?.(tail);
    });
  }

  /** Tells subscribers the log may have grown (another tab wrote, a pull landed). */
  wake(): void {
    for (const s of this.#subscribers) s.wake();
  }

  async append(stream: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const r = await this.log.append(stream, events, options);
    return { version: r.version, positions: r.positions };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const r = await this.log.readStream(stream, options);
    return { events: r.events.map(toEnvelope), version: r.version };
  }

  async readAll(options: ReadAllOptions = {}): Promise<ReadAllResult> {
    const r = await this.log.readAll(options);
    return { events: r.events.map(toEnvelope), head: r.head, scannedTo: r.scannedTo };
  }

  subscribe(options: SubscribeOptions, handler: EventHandler): Subscription {
    const sub = new Subscriber(
      options,
      handler,
      (after, limit) => this.readAll({ after, limit, ...(options.filter ? { filter: options.filter } : {}) }),
      () => this.#subscribers.delete(sub),
    );
    this.#subscribers.add(sub);
    sub.wake();
    return sub;
  }

  async close(): Promise<void> {
    await this.log.close();
    for (const s of [...this.#subscribers]) await s.close();
    this.log.db.close();
  }
}
