import {
  type ClientMessage,
  type EdgelogError,
  type EventEnvelope,
  type EventFilter,
  error,
  type ServerMessage,
} from '@edgelog/core';
import { z } from 'zod';
import { Claims, streamAllowed } from './auth.ts';
import { type GlobalReadScope, inScope } from './global-log.ts';

/** A subscription of a socket to the store's global log. */
export const Subscription = z.object({
  id: z.string(),
  cursor: z.number().int().min(0),
  filter: z.optional(
    z.object({ streamPrefix: z.optional(z.string()), types: z.optional(z.array(z.string())) }),
  ),
  streams: z.optional(z.array(z.string())),
  /** False while catching up: live commits are left to the catch-up, which reads the log. */
  live: z.boolean(),
  /**
   * The `coveredTo` of the last events message sent (the subscribe's `after` before one is):
   * the next message's `after`. Absent in attachments saved before it was kept.
   */
  sent: z.optional(z.number().int().min(0)),
});
export type Subscription = z.infer<typeof Subscription>;

/** Per-socket state, kept in the socket's attachment so it survives hibernation. */
export const SocketState = z.object({
  store: z.string(),
  claims: z.optional(Claims),
  subs: z.array(Subscription),
  /** A heartbeat found it without a token: the next one closes it (see `awaitAuth` in socket-message.ts). */
  waiting: z.optional(z.literal(true)),
});
export type SocketState = z.infer<typeof SocketState>;

/** The subscription a `subscribe` message asks for, or the error that refuses it. */
export function subscriptionFor(
  message: Extract<ClientMessage, { type: 'subscribe' }>,
  claims: Claims | undefined,
): Subscription | EdgelogError {
  if (!claims) return error('Unauthorized', 'send an auth message first');
  const denied = message.streams?.find((s) => !streamAllowed(claims, s));
  if (denied !== undefined) return error('Forbidden', `this token may not read stream '${denied}'`);
  const after = message.after ?? 0;
  const sub: Subscription = { id: message.id, cursor: after, live: false, sent: after };
  if (message.filter) sub.filter = compactFilter(message.filter);
  if (message.streams) sub.streams = message.streams;
  return sub;
}

/** A subscription's filter with its unset fields left out (attachments are stored as sent). */
function compactFilter(filter: EventFilter): NonNullable<Subscription['filter']> {
  const out: NonNullable<Subscription['filter']> = {};
  if (filter.streamPrefix !== undefined) out.streamPrefix = filter.streamPrefix;
  if (filter.types !== undefined) out.types = filter.types;
  return out;
}

/** What a subscription may read: its filter and streams, within the token's stream prefixes. */
export function scopeOf(sub: Subscription, claims: Claims): GlobalReadScope {
  const scope: GlobalReadScope = {};
  if (sub.filter) scope.filter = sub.filter;
  if (claims.streams) scope.allowedPrefixes = claims.streams;
  if (sub.streams) scope.streams = sub.streams;
  return scope;
}

/**
 * What live subscription `sub` gets of a commit group (`envelopes`, up to `head`): its events
 * message, if any, with its cursor moved to `head`; or `'behind'` when its cursor shows a commit
 * it never heard of (one not broadcast), which it must read from the log instead of skipping,
 * so that no message's coverage spans a hole.
 */
export function liveMessage(
  sub: Subscription,
  claims: Claims,
  envelopes: readonly EventEnvelope[],
  firstPosition: number,
  head: number,
): ServerMessage | 'behind' | undefined {
  if (sub.cursor < firstPosition - 1) return 'behind';
  const scope = scopeOf(sub, claims);
  const events = envelopes.filter((e) => (e.position ?? 0) > sub.cursor && inScope(scope, e));
  sub.cursor = head;
  return events.length > 0 ? eventsMessage(sub, events) : undefined;
}

/**
 * The events message of `sub` holding every event it sees in (`after`, `coveredTo`]: its
 * cursor moved over positions where it saw nothing without a message, so `after` is the
 * coverage the previous message announced, and a reader that applied that one (its cursor is
 * `after`) may apply this one whole and move to `coveredTo`; one that did not (a reordered or
 * lost message) can tell. `filtered` says that the subscription's scope left positions of that
 * range out, as on a page of the global log: a message without it has no gaps, and a reader
 * checks that its positions run on.
 */
export function eventsMessage(sub: Subscription, events: EventEnvelope[]): ServerMessage {
  const message: Extract<ServerMessage, { type: 'events' }> = {
    type: 'events',
    subscription: sub.id,
    events,
    coveredTo: sub.cursor,
  };
  if (sub.sent !== undefined) {
    message.after = sub.sent;
    if (events.length < sub.cursor - sub.sent) message.filtered = true;
  }
  sub.sent = sub.cursor;
  return message;
}
