/**
 * Wire protocol v1, shared by the browser SDK and the edge server. Every HTTP body, query and
 * WebSocket message is one of these schemas; both sides parse what they receive.
 */
import { z } from 'zod';
import { EventEnvelope, EventFilter, EventType, NewEvent, StreamName } from './envelope.ts';
import { WireError } from './errors.ts';
import { ExpectedVersion } from './expected-version.ts';
import { defaultLimits } from './limits.ts';

export const PROTOCOL_VERSION = 'v1';

const pageLimit = z.coerce.number().int().min(1).max(defaultLimits.maxPageSize);
const positionCursor = z.coerce.number().int().min(0);
/** Query strings carry lists as comma-separated values. */
const typeList = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').filter((s) => s !== '') : v),
  z.array(EventType).max(100),
);

// ---- append ----------------------------------------------------------------------------
export const AppendRequest = z.object({
  expectedVersion: z.optional(ExpectedVersion),
  events: z.array(NewEvent).min(1).max(defaultLimits.maxEventsPerAppend),
});
export type AppendRequest = z.infer<typeof AppendRequest>;

export const AppendResponse = z.object({
  /** The stream's version after the append. */
  version: z.number().int().min(1),
  /** One global position per event, in order. */
  positions: z.array(z.number().int().min(1)),
});
export type AppendResponse = z.infer<typeof AppendResponse>;

// ---- stream read -----------------------------------------------------------------------
export const ReadDirection = z.enum(['forward', 'backward']);
export type ReadDirection = z.infer<typeof ReadDirection>;

export const ReadStreamQuery = z.object({
  /** Inclusive version; default 1 forwards, the last version backwards. */
  from: z.optional(z.coerce.number().int().min(1)),
  direction: z.optional(ReadDirection),
  limit: z.optional(pageLimit),
});
export type ReadStreamQuery = z.infer<typeof ReadStreamQuery>;

export const ReadStreamResponse = z.object({
  events: z.array(EventEnvelope),
  /** The stream's current version. */
  version: z.number().int().min(0),
});
export type ReadStreamResponse = z.infer<typeof ReadStreamResponse>;

// ---- global read (read-all and pull share one page shape) -------------------------------
export const ReadAllQuery = z.object({
  /** Exclusive position; default 0 (from the start). */
  after: z.optional(positionCursor),
  limit: z.optional(pageLimit),
  streamPrefix: z.optional(z.string().max(200)),
  types: z.optional(typeList),
});
export type ReadAllQuery = z.infer<typeof ReadAllQuery>;

/**
 * A page of the global log. It holds every matching event in (`after`, `scannedTo`], so a
 * reader resumes after `scannedTo`, and it has caught up when `scannedTo` reaches `head`.
 * A read examines at most `maxScanPerRead` log positions (never fewer than its limit), so a
 * sparse filter may answer a short page, even an empty one, well before `head`: only
 * `scannedTo` says where to go on. An unfiltered page ends at its last event when full and at
 * `head` when short, as it always did.
 */
export const ReadAllResponse = z.object({
  events: z.array(EventEnvelope),
  /** The store's last position when the page was read. */
  head: z.number().int().min(0),
  scannedTo: z
    .number()
    .int()
    .min(0)
    .describe(
      'The last position this read examined (at least `after`): every matching event up to it is in `events`. Read the next page with `after=scannedTo`; caught up when it reaches `head`. A filtered read stops after `maxScanPerRead` positions, so a short or empty page does not mean the end.',
    ),
  filtered: z
    .optional(z.literal(true))
    .describe(
      'Present when the read left events out (a `streamPrefix` or `types` filter, or a token limited to some streams): the positions in `events` then have gaps. Without it the positions up to `scannedTo` run on without a gap, which a reader may check.',
    ),
});
export type ReadAllResponse = z.infer<typeof ReadAllResponse>;

export const PullQuery = ReadAllQuery;
export type PullQuery = ReadAllQuery;
export const PullResponse = ReadAllResponse;
export type PullResponse = ReadAllResponse;

// ---- push: several commits, answered one by one -----------------------------------------
export const Commit = z.object({
  /** Client-made id; a retried commit with the same id and events is a `duplicate`. */
  commitId: z.uuid({ message: 'commit ids are UUIDs' }),
  stream: StreamName,
  expectedVersion: z.optional(ExpectedVersion),
  events: z.array(NewEvent).min(1).max(defaultLimits.maxEventsPerAppend),
});
export type Commit = z.infer<typeof Commit>;

export const PushRequest = z.object({
  commits: z.array(Commit).min(1).max(defaultLimits.maxCommitsPerPush),
});
export type PushRequest = z.infer<typeof PushRequest>;

export const CommitResult = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('committed'),
    commitId: z.string(),
    version: z.number().int().min(1),
    positions: z.array(z.number().int().min(1)),
  }),
  z.object({
    status: z.literal('duplicate'),
    commitId: z.string(),
    version: z.number().int().min(1),
    positions: z.array(z.number().int().min(1)),
  }),
  z.object({
    status: z.literal('conflict'),
    commitId: z.string(),
    /** The stream's current version on the server. */
    version: z.number().int().min(0),
    /** The stream's events after the commit's expected version: what the client has not seen. */
    events: z.array(EventEnvelope),
  }),
  z.object({
    status: z.literal('rejected'),
    commitId: z.string(),
    error: WireError,
  }),
]);
export type CommitResult = z.infer<typeof CommitResult>;

export const PushResponse = z.object({ results: z.array(CommitResult) });
export type PushResponse = z.infer<typeof PushResponse>;

// ---- WebSocket -------------------------------------------------------------------------
export const SubscriptionId = z.string().min(1).max(64);

export const ClientMessage = z.discriminatedUnion('type', [
  /** First message when the token could not travel in the Authorization header. */
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(8192) }),
  z.object({
    type: z.literal('subscribe'),
    id: SubscriptionId,
    /** Exclusive position to resume from; default 0. */
    after: z.optional(z.number().int().min(0)),
    filter: z.optional(EventFilter),
    /** Subscribe to these streams only (from `after`, a global position). */
    streams: z.optional(z.array(StreamName).min(1).max(100)),
  }),
  z.object({ type: z.literal('unsubscribe'), id: SubscriptionId }),
  z.object({ type: z.literal('ping'), at: z.optional(z.number()) }),
]);
export type ClientMessage = z.infer<typeof ClientMessage>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), head: z.number().int().min(0) }),
  z.object({
    type: z.literal('events'),
    subscription: SubscriptionId,
    events: z.array(EventEnvelope),
    /**
     * The message holds every event the subscription sees in (`after`, `coveredTo`] (store
     * subscriptions; a filter or a token's streams leave positions out). `after` is the
     * previous message's `coveredTo` (at first the subscribe's `after`): a reader whose cursor
     * is `after` may apply the events and move its cursor to `coveredTo`.
     */
    after: z.optional(z.number().int().min(0)),
    coveredTo: z.optional(z.number().int().min(0)),
    /** The subscription's scope left positions of (`after`, `coveredTo`] out. */
    filtered: z.optional(z.literal(true)),
  }),
  /** Catch-up is over: everything up to `position` was sent; live events follow. */
  z.object({ type: z.literal('caught-up'), subscription: SubscriptionId, position: z.number().int().min(0) }),
  z.object({ type: z.literal('heartbeat'), head: z.number().int().min(0) }),
  z.object({ type: z.literal('pong'), at: z.optional(z.number()) }),
  z.object({ type: z.literal('error'), subscription: z.optional(SubscriptionId), error: WireError }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;

/** HTTP paths of v1, for both the router and the clients. */
export const paths = {
  streamEvents: (store: string, stream: string) =>
    `/v1/stores/${encodeURIComponent(store)}/streams/${encodeURIComponent(stream)}/events`,
  allEvents: (store: string) => `/v1/stores/${encodeURIComponent(store)}/events`,
  push: (store: string) => `/v1/stores/${encodeURIComponent(store)}/sync/push`,
  pull: (store: string) => `/v1/stores/${encodeURIComponent(store)}/sync/pull`,
  ws: (store: string) => `/v1/stores/${encodeURIComponent(store)}/ws`,
} as const;
