import type { EventEnvelope, NewEvent } from './envelope.ts';
import { matchesFilter } from './envelope.ts';
import { idempotencyConflict, streamNotFound } from './errors.ts';
import type {
  AppendOptions,
  AppendResult,
  EventHandler,
  EventStore,
  ReadAllOptions,
  ReadAllResult,
  ReadStreamOptions,
  ReadStreamResult,
  SubscribeOptions,
  Subscription,
} from './event-store.ts';
import { checkExpectedVersion } from './expected-version.ts';
import type { Limits } from './limits.ts';
import { defaultLimits, scanBudget } from './limits.ts';
import type { Clock } from './ports.ts';
import { systemClock } from './ports.ts';
import { Subscriber } from './subscriber.ts';
import { validateAppend } from './validate-append.ts';

export interface InMemoryEventStoreOptions {
  limits?: Partial<Limits>;
  clock?: Clock;
}

interface StoredId {
  stream: string;
  version: number;
  position: number;
}

const deepFreeze = <T>(value: T): T => {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
};

/**
 * The reference `EventStore`: every rule of the protocol, nothing else. It is the test
 * oracle for the other stores and the store behind unit tests of deciders and projections.
 */
export class InMemoryEventStore implements EventStore {
  readonly limits: Limits;
  readonly #clock: Clock;
  readonly #streams = new Map<string, EventEnvelope[]>();
  readonly #log: EventEnvelope[] = [];
  readonly #ids = new Map<string, StoredId>();
  readonly #subscribers = new Set<Subscriber>();

  constructor(options: InMemoryEventStoreOptions = {}) {
    this.limits = { ...defaultLimits, ...options.limits };
    this.#clock = options.clock ?? systemClock;
  }

  async append(stream: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const valid = validateAppend(stream, events, this.limits);
    const stored = valid.map((e) => this.#ids.get(e.id));
    const known = stored.filter((s): s is StoredId => s !== undefined);
    if (known.length === valid.length && known.every((s) => s.stream === stream)) {
      return { version: Math.max(...known.map((s) => s.version)), positions: known.map((s) => s.position) };
    }
    if (known.length > 0) {
      throw idempotencyConflict(
        stream,
        valid.filter((_, i) => stored[i] !== undefined).map((e) => e.id),
        valid.filter((_, i) => stored[i] === undefined).map((e) => e.id),
      );
    }
    const current = this.#streams.get(stream) ?? [];
    const version = current.length;
    checkExpectedVersion(stream, options.expectedVersion, version);
    const recordedAt = this.#clock().toISOString();
    const envelopes = valid.map((e, i) =>
      deepFreeze<EventEnvelope>({
        id: e.id,
        stream,
        type: e.type,
        schemaVersion: e.schemaVersion,
        data: JSON.parse(JSON.stringify(e.data)),
        metadata: JSON.parse(JSON.stringify(e.metadata)),
        version: version + i + 1,
        position: this.#log.length + i + 1,
        recordedAt,
      }),
    );
    if (current.length === 0) this.#streams.set(stream, current);
    current.push(...envelopes);
    for (const e of envelopes) {
      this.#log.push(e);
      this.#ids.set(e.id, { stream, version: e.version, position: e.position! });
    }
    for (const s of this.#subscribers) s.wake();
    return { version: current.length, positions: envelopes.map((e) => e.position!) };
  }

  async readStream(stream: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const events = this.#streams.get(stream);
    if (!events) throw streamNotFound(stream);
    const limit = Math.min(options.limit ?? this.limits.defaultPageSize, this.limits.maxPageSize);
    const version = events.length;
    if (options.direction === 'backward') {
      const from = Math.min(options.from ?? version, version);
      const start = Math.max(0, from - limit);
      return { events: events.slice(start, from).reverse(), version };
    }
    const from = options.from ?? 1;
    return { events: events.slice(from - 1, from - 1 + limit), version };
  }

  async readAll(options: ReadAllOptions = {}): Promise<ReadAllResult> {
    const limit = Math.min(options.limit ?? this.limits.defaultPageSize, this.limits.maxPageSize);
    const after = options.after ?? 0;
    const end = Math.min(this.#log.length, after + scanBudget(this.limits, limit));
    const out: EventEnvelope[] = [];
    let scannedTo = Math.max(after, end);
    for (let i = after; i < end; i++) {
      const e = this.#log[i]!;
      if (!matchesFilter(options.filter, e)) continue;
      out.push(e);
      if (out.length === limit) {
        scannedTo = i + 1;
        break;
      }
    }
    return { events: out, head: this.#log.length, scannedTo };
  }

  subscribe(options: SubscribeOptions, handler: EventHandler): Subscription {
    const subscriber = new Subscriber(
      options,
      handler,
      (after, limit) => this.readAll({ after, limit, ...(options.filter ? { filter: options.filter } : {}) }),
      () => this.#subscribers.delete(subscriber),
    );
    this.#subscribers.add(subscriber);
    subscriber.start();
    return subscriber;
  }
}
