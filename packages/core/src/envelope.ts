import { z } from 'zod';

/** Store names: a tenant's event space. Lowercase, URL-safe, at most 64 characters. */
export const StoreName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,63}$/,
    'store names are 1-64 of a-z, 0-9, _ and -, starting with a letter or digit',
  );
export type StoreName = z.infer<typeof StoreName>;

/** Stream names, e.g. `order-123`. URL-safe; `$` is reserved for the system. */
export const StreamName = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$/,
    'stream names are 1-200 of A-Z, a-z, 0-9 and . _ : @ + = -, starting with a letter or digit',
  );
export type StreamName = z.infer<typeof StreamName>;

/** The pattern of event type names (shared with the allocation-free check in validateAppend). */
export const EVENT_TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9._:-]{0,99}$/;

/** Event type names; `$` is reserved for the system. */
export const EventType = z
  .string()
  .regex(EVENT_TYPE_PATTERN, 'event types are 1-100 of A-Z, a-z, 0-9 and . _ : -, starting with a letter');

/** The pattern `EventId` checks: zod's own UUID pattern (any RFC 9562 version). */
export const EVENT_ID_PATTERN = z.regexes.uuid();

export const EventId = z.uuid({ message: 'event ids are UUIDs' });

/** Application metadata; keys starting with `$` are the server's and are refused from clients. */
export const Metadata = z
  .record(z.string().max(100), z.unknown())
  .refine((m) => Object.keys(m).every((k) => !k.startsWith('$')), {
    message: "metadata keys starting with '$' are reserved for the server",
  });
export type Metadata = Record<string, unknown>;

/** An event as a writer sends it: the server assigns version, position and time. */
export const NewEvent = z.object({
  id: EventId,
  type: EventType,
  schemaVersion: z.optional(z.number().int().min(1).max(1000)),
  data: z.unknown().refine((d) => d !== undefined, { message: 'data is required' }),
  metadata: z.optional(Metadata),
});
export interface NewEvent<Type extends string = string, Data = unknown> {
  id: string;
  type: Type;
  schemaVersion?: number;
  data: Data;
  metadata?: Metadata;
}

/** A stored event. `position` and `recordedAt` are absent only on pending (unconfirmed) events. */
export const EventEnvelope = z.object({
  id: z.string(),
  stream: z.string(),
  type: z.string(),
  schemaVersion: z.number().int().min(1),
  data: z.unknown(),
  metadata: z.record(z.string(), z.unknown()),
  version: z.number().int().min(1),
  position: z.optional(z.number().int().min(1)),
  recordedAt: z.optional(z.string()),
});
export interface EventEnvelope<Type extends string = string, Data = unknown> {
  id: string;
  stream: string;
  type: Type;
  schemaVersion: number;
  data: Data;
  metadata: Metadata;
  version: number;
  position?: number;
  recordedAt?: string;
}

/** A confirmed event: it has a global position and a server time. */
export type RecordedEvent<Type extends string = string, Data = unknown> = EventEnvelope<Type, Data> & {
  position: number;
  recordedAt: string;
};

/** A filter over the global log. Both parts must match when both are given. */
export const EventFilter = z.object({
  streamPrefix: z.optional(z.string().max(200)),
  types: z.optional(z.array(EventType).max(100)),
});
export type EventFilter = z.infer<typeof EventFilter>;

export function matchesFilter(
  filter: EventFilter | undefined,
  event: { stream: string; type: string },
): boolean {
  if (!filter) return true;
  if (filter.streamPrefix !== undefined && !event.stream.startsWith(filter.streamPrefix)) return false;
  if (filter.types !== undefined && filter.types.length > 0 && !filter.types.includes(event.type))
    return false;
  return true;
}
