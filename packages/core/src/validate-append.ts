import type { z } from 'zod';
import { EVENT_ID_PATTERN, EVENT_TYPE_PATTERN, NewEvent, StreamName } from './envelope.ts';
import { fromZodError, payloadTooLarge, validationError } from './errors.ts';
import type { Limits } from './limits.ts';
import { eventSize, utf8Length } from './limits.ts';

const SIZE_SLICE = 100;

/**
 * How much longer a JSON value's text can be, written again by `JSON.stringify`, than the text
 * it was parsed from: a number grows at most from `1e20` (4 bytes) to 21 digits, and decoding
 * turns an invalid UTF-8 byte into U+FFFD (3 bytes). Nothing else grows.
 */
const MAX_REWRITE = 6;

/**
 * Checks an append the way every store must, in the protocol's order: sizes first (an
 * oversize event is refused whole before anything else is looked at), then shape.
 * Returns the events parsed, with `schemaVersion` defaulted to 1 and `metadata` to `{}`.
 */
export type ValidEvent = z.infer<typeof NewEvent> & {
  schemaVersion: number;
  metadata: Record<string, unknown>;
};

const EVENT_KEYS = new Set(['id', 'type', 'schemaVersion', 'data', 'metadata']);
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/**
 * The common case of `NewEvent`, checked without zod (which cannot compile its fast path where
 * `eval` is refused, as in Workers, and then costs several microseconds per event). Returns
 * undefined whenever zod must decide, and explain: unknown keys (zod strips them), any doubt.
 * A property test checks that it never accepts what zod refuses, nor answers differently.
 */
export function quickEvent(event: unknown): ValidEvent | undefined {
  if (!isPlainObject(event)) return undefined;
  for (const key of Object.keys(event)) if (!EVENT_KEYS.has(key)) return undefined;
  const { id, type, schemaVersion, data, metadata } = event;
  if (typeof id !== 'string' || !EVENT_ID_PATTERN.test(id)) return undefined;
  if (typeof type !== 'string' || !EVENT_TYPE_PATTERN.test(type)) return undefined;
  if (schemaVersion !== undefined) {
    if (typeof schemaVersion !== 'number' || !Number.isInteger(schemaVersion)) return undefined;
    if (schemaVersion < 1 || schemaVersion > 1000) return undefined;
  }
  if (data === undefined) return undefined;
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) return undefined;
    for (const key of Object.keys(metadata)) if (key.length > 100 || key.startsWith('$')) return undefined;
  }
  return { id, type, schemaVersion: schemaVersion ?? 1, data, metadata: metadata ? { ...metadata } : {} };
}

/**
 * An append's events, checked and defaulted (see `ValidEvent`). `sentBytes`: the measured UTF-8
 * size of the request they came in, when the caller has it (the edge does; a local store does not).
 */
export function validateAppend(
  stream: string,
  events: readonly unknown[],
  limits: Limits,
  sentBytes = Number.POSITIVE_INFINITY,
): ValidEvent[] {
  if (!Array.isArray(events)) throw validationError([{ path: 'events', message: 'events must be an array' }]);
  if (events.length > limits.maxEventsPerAppend) {
    throw payloadTooLarge('the append', events.length, limits.maxEventsPerAppend, 'events');
  }
  // An event is measured as its JSON text, which is what every store keeps. Each event sent is
  // part of the request, and its text is at most MAX_REWRITE times what was sent, so a request
  // (`sentBytes`: its measured UTF-8 size, when the caller has it) that small holds no oversize
  // event, and its events need no measuring.
  if (sentBytes * MAX_REWRITE > limits.maxEventBytes) checkEventSizes(events, limits);
  const streamCheck = StreamName.safeParse(stream);
  if (!streamCheck.success) throw fromZodError(streamCheck.error, 'stream');
  if (events.length === 0)
    throw validationError([{ path: 'events', message: 'an append needs at least one event' }]);
  const valid: ValidEvent[] = [];
  for (let i = 0; i < events.length; i++) {
    const event = events[i];
    try {
      valid.push(quickEvent(event) ?? parseEvent(event, i));
    } catch (e) {
      // The answer of one pass in order: an id repeated before this event is reported first.
      throwFirstRepeat(valid);
      throw e;
    }
  }
  if (hasDuplicate(valid.map((e) => e.id))) throwFirstRepeat(valid);
  return valid;
}

/**
 * Refuses the first event over `maxEventBytes`. One native stringify of a slice bounds every
 * event in it (each event's JSON is part of the slice's); only a slice over the limit is
 * measured event by event.
 */
function checkEventSizes(events: readonly unknown[], limits: Limits): void {
  for (let start = 0; start < events.length; start += SIZE_SLICE) {
    const slice = events.slice(start, start + SIZE_SLICE);
    if (utf8Length(JSON.stringify(slice)) <= limits.maxEventBytes) continue;
    slice.forEach((event, i) => {
      const size = eventSize(event);
      if (size > limits.maxEventBytes)
        throw payloadTooLarge(`events.${start + i}`, size, limits.maxEventBytes);
    });
  }
}

/**
 * Whether any string appears twice. Strictly increasing values (time-ordered ids, as core's
 * `randomId` makes them) are answered in one pass. Otherwise it sorts a copy instead of filling
 * a `Set`: V8 internalises every string it adds to a `Set` (hashing it into the isolate's string
 * table), which for fresh event ids costs several times a sort of 100 of them.
 */
export function hasDuplicate(values: readonly string[]): boolean {
  if (values.length < 2) return false;
  let increasing = true;
  for (let i = 1; i < values.length && increasing; i++)
    increasing = (values[i - 1] as string) < (values[i] as string);
  if (increasing) return false;
  const sorted = values.slice().sort();
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) return true;
  return false;
}

/** Throws for the first event whose id an earlier one has (the rare path: only after a check). */
function throwFirstRepeat(events: readonly ValidEvent[]): void {
  const seen = new Set<string>();
  for (const [i, { id }] of events.entries()) {
    if (seen.has(id))
      throw validationError([
        { path: `events.${i}.id`, message: `event id ${id} appears twice in one append` },
      ]);
    seen.add(id);
  }
}

function parseEvent(event: unknown, i: number): ValidEvent {
  const parsed = NewEvent.safeParse(event);
  if (!parsed.success) throw fromZodError(parsed.error, `events.${i}`);
  return {
    ...parsed.data,
    schemaVersion: parsed.data.schemaVersion ?? 1,
    metadata: parsed.data.metadata ?? {},
  };
}
