import type { EventEnvelope, EventFilter, NewEvent } from './envelope.ts';
import type { ExpectedVersion } from './expected-version.ts';
import type { ReadDirection } from './protocol.ts';

export interface AppendOptions {
  /** Default `'any'`. `0` means the same as `'no_stream'`. */
  expectedVersion?: ExpectedVersion;
}

export interface AppendResult {
  /** The stream's version after the append (for a retried append: after the original one). */
  version: number;
  /** One position per appended event, in order. */
  positions: number[];
}

export interface ReadStreamOptions {
  /** Inclusive version; default 1 forwards, the last version backwards. */
  from?: number;
  /** Default `'forward'`. */
  direction?: ReadDirection;
  /** Default and maximum: the store's `Limits` (`defaultPageSize`, `maxPageSize`). */
  limit?: number;
}

export interface ReadStreamResult {
  events: EventEnvelope[];
  /** The stream's current version. */
  version: number;
}

export interface ReadAllOptions {
  /** Exclusive position; default 0. */
  after?: number;
  /** Default and maximum: the store's `Limits`. */
  limit?: number;
  filter?: EventFilter;
}

export interface ReadAllResult {
  /** Events after `after`, in position order, matching the filter. */
  events: EventEnvelope[];
  /** The store's last position when the page was read. */
  head: number;
  /**
   * The last position the read examined (at least `after`): every matching event up to it is
   * in `events`. Resume after it; caught up when it reaches `head`. A filtered read may stop
   * early (`Limits.maxScanPerRead`) with a short or empty page, so the page's length says
   * nothing about the end. Unfiltered: the last event's position for a full page, else `head`.
   */
  scannedTo: number;
}

export interface SubscribeOptions {
  /** Exclusive start position; default 0 (everything). */
  after?: number;
  filter?: EventFilter;
}

/** Called once per event, in position order; the next event waits for the returned promise. */
export type EventHandler = (event: EventEnvelope) => void | Promise<void>;

export interface Subscription {
  /** Resolves with the position reached when catch-up ended and live delivery began. */
  readonly caughtUp: Promise<number>;
  /** Stops delivery; resolves once no handler call is running. */
  close(): Promise<void>;
}

/**
 * The store port every edgelog store implements: the in-memory reference, the edge server
 * (over HTTP) and the browser's local log. The contract suite in `@edgelog/core/testing`
 * checks any implementation against invariants I1-I6 and I11.
 */
export interface EventStore {
  /** Appends atomically: all events or none. Throws WrongExpectedVersion, IdempotencyConflict, PayloadTooLarge, Validation. */
  append(stream: string, events: NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** Throws StreamNotFound when the stream has no events. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<ReadStreamResult>;
  readAll(options?: ReadAllOptions): Promise<ReadAllResult>;
  /** Catch-up from `after` (exclusive), then live; never skips or repeats an event. */
  subscribe(options: SubscribeOptions, handler: EventHandler): Subscription;
}
