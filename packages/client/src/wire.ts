import * as z from 'zod/mini';

/**
 * The server answers the client parses, as zod/mini schemas: the same shapes as core's
 * protocol.ts (wire.test.ts checks that both accept the same samples), at a fraction of full
 * zod's bundle size. Parse everything the network hands over.
 */
const int = () => z.number().check(z.int());

export const WireError = z.object({
  code: z.string(),
  message: z.string(),
  details: z.optional(z.record(z.string(), z.unknown())),
});

export const ErrorResponse = z.object({ error: WireError });

export const WireEvent = z.object({
  id: z.string(),
  stream: z.string(),
  type: z.string(),
  schemaVersion: int().check(z.minimum(1)),
  data: z.unknown(),
  metadata: z.record(z.string(), z.unknown()),
  version: int().check(z.minimum(1)),
  position: z.optional(int().check(z.minimum(1))),
  recordedAt: z.optional(z.string()),
});
export type WireEvent = z.infer<typeof WireEvent>;

export const PullResponse = z.object({
  events: z.array(WireEvent),
  head: int().check(z.minimum(0)),
  /** Absent from servers older than the scan budget: then a short page covered up to `head`. */
  scannedTo: z.optional(int().check(z.minimum(0))),
  /** The read left events out (a token limited to some streams): its positions have gaps. */
  filtered: z.optional(z.literal(true)),
});
export type PullResponse = z.infer<typeof PullResponse>;

/**
 * The last position a page pulled after `after` with `limit` covers: every event up to it is
 * in the page, so the next pull is after it. A filtered page (a stream-limited token) may stop
 * at the server's scan budget, short of `head`, and says so in `scannedTo`.
 */
export function coveredTo(page: PullResponse, after: number, limit: number): number {
  if (page.scannedTo !== undefined) return Math.max(after, page.scannedTo);
  const last = page.events.at(-1)?.position;
  return page.events.length < limit || last === undefined ? Math.max(after, page.head) : last;
}

const positions = z.array(int().check(z.minimum(1)));
export const CommitResult = z.discriminatedUnion('status', [
  z.object({ status: z.literal('committed'), commitId: z.string(), version: int(), positions }),
  z.object({ status: z.literal('duplicate'), commitId: z.string(), version: int(), positions }),
  z.object({
    status: z.literal('conflict'),
    commitId: z.string(),
    version: int(),
    events: z.array(WireEvent),
  }),
  z.object({ status: z.literal('rejected'), commitId: z.string(), error: WireError }),
]);
export type CommitResult = z.infer<typeof CommitResult>;

export const PushResponse = z.object({ results: z.array(CommitResult) });
export type PushResponse = z.infer<typeof PushResponse>;

export const ServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), head: int() }),
  z.object({
    type: z.literal('events'),
    subscription: z.string(),
    events: z.array(WireEvent),
    after: z.optional(int()),
    coveredTo: z.optional(int()),
    filtered: z.optional(z.boolean()),
  }),
  z.object({ type: z.literal('caught-up'), subscription: z.string(), position: int() }),
  z.object({ type: z.literal('heartbeat'), head: int() }),
  z.object({ type: z.literal('pong'), at: z.optional(z.number()) }),
  z.object({ type: z.literal('error'), subscription: z.optional(z.string()), error: WireError }),
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
