import { type ExpectedVersion, type Limits, matchesExpectedVersion, type NewEvent } from '@edgelog/core';
import { payloadTooLarge, validationError, wrongExpectedVersion } from './errors.ts';

// The same rules as core's zod schemas (envelope.ts), hand-written so the worker does not
// bundle full zod; validate.test.ts checks both agree.
const STREAM = /^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$/;
const TYPE = /^[A-Za-z][A-Za-z0-9._:-]{0,99}$/;
const UUID =
  /^([0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/i;

/** A validated event: `schemaVersion` defaulted to 1 and `metadata` to `{}`. */
export interface ValidEvent {
  id: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: Record<string, unknown>;
}

const encoder = new TextEncoder();
const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks an append in the protocol's order: counts and sizes first, then the stream, then shape.
 * `freshIds`: every id was made for this append by `randomId` (the worker's own), so none can
 * repeat and that check is skipped.
 */
export function validateAppend(
  stream: string,
  events: readonly unknown[],
  limits: Limits,
  freshIds = false,
  /** An upper bound, when known, of the length of the events' JSON text (see `AppendOptions`). */
  textBound?: number,
): ValidEvent[] {
  if (!Array.isArray(events)) throw validationError('events', 'events must be an array');
  if (events.length > limits.maxEventsPerAppend) {
    throw payloadTooLarge(`append of ${events.length} events`, events.length, limits.maxEventsPerAppend);
  }
  // One text of the whole append bounds every event's and the request's size: only an append
  // that might be over a limit is measured event by event (one call is cheaper than n). A JSON
  // text of n UTF-16 units is at most 3n UTF-8 bytes.
  const units = textBound ?? (JSON.stringify(events) ?? '').length;
  if (units * 3 > Math.min(limits.maxEventBytes, limits.maxRequestBytes)) checkSizes(events, limits);
  if (typeof stream !== 'string' || !STREAM.test(stream)) {
    throw validationError(
      'stream',
      'stream names are 1-200 of A-Z, a-z, 0-9 and . _ : @ + = -, starting with a letter or digit',
    );
  }
  if (events.length === 0) throw validationError('events', 'an append needs at least one event');
  const valid: ValidEvent[] = [];
  for (let i = 0; i < events.length; i++) {
    try {
      valid.push(checkEvent(events[i], i, freshIds));
    } catch (e) {
      // As core answers: an id repeated before the event at fault is reported first.
      if (!freshIds) checkRepeats(valid);
      throw e;
    }
  }
  if (!freshIds && events.length > 1) checkRepeats(valid);
  return valid;
}

/** One event's shape, checked and defaulted; `i` names it in errors. A fresh id is a UUID already. */
function checkEvent(raw: unknown, i: number, freshId: boolean): ValidEvent {
  const at = `events.${i}`;
  if (!isRecord(raw)) throw validationError(at, 'an event must be an object');
  const { id, type, schemaVersion, data, metadata } = raw as Partial<NewEvent> & Record<string, unknown>;
  if (typeof id !== 'string' || (!freshId && !UUID.test(id)))
    throw validationError(`${at}.id`, 'event ids are UUIDs');
  if (typeof type !== 'string' || !TYPE.test(type)) {
    throw validationError(
      `${at}.type`,
      'event types are 1-100 of A-Z, a-z, 0-9 and . _ : -, starting with a letter',
    );
  }
  if (
    schemaVersion !== undefined &&
    (typeof schemaVersion !== 'number' ||
      !Number.isInteger(schemaVersion) ||
      schemaVersion < 1 ||
      schemaVersion > 1000)
  ) {
    throw validationError(`${at}.schemaVersion`, 'schemaVersion is an integer from 1 to 1000');
  }
  if (data === undefined) throw validationError(`${at}.data`, 'data is required');
  if (metadata !== undefined) {
    if (!isRecord(metadata)) throw validationError(`${at}.metadata`, 'metadata must be an object');
    for (const key of Object.keys(metadata)) {
      if (key.startsWith('$'))
        throw validationError(
          `${at}.metadata`,
          "metadata keys starting with '$' are reserved for the server",
        );
      if (key.length > 100)
        throw validationError(`${at}.metadata`, 'metadata keys are at most 100 characters');
    }
  }
  return { id, type, schemaVersion: schemaVersion ?? 1, data, metadata: metadata ?? {} };
}

/**
 * Refuses an id that appears twice. Strictly increasing ids (time-ordered, as `randomId` makes
 * them) are answered in one pass; otherwise a sorted copy is compared, and only an append that
 * has a repeat is walked with a `Set` to name the first (V8 internalises each string a `Set`
 * holds, which costs several times a sort).
 */
function checkRepeats(events: readonly ValidEvent[]): void {
  let increasing = true;
  for (let i = 1; i < events.length && increasing; i++)
    increasing = (events[i - 1] as ValidEvent).id < (events[i] as ValidEvent).id;
  if (increasing) return;
  const sorted = events.map((e) => e.id).sort();
  if (sorted.every((id, i) => i === 0 || id !== sorted[i - 1])) return;
  const seen = new Set<string>();
  events.forEach(({ id }, i) => {
    if (seen.has(id)) throw validationError(`events.${i}.id`, `event id ${id} appears twice in one append`);
    seen.add(id);
  });
}

export function checkExpectedVersion(
  stream: string,
  expected: ExpectedVersion | undefined,
  actual: number,
): void {
  if (!matchesExpectedVersion(expected, actual))
    throw wrongExpectedVersion(stream, expected ?? 'any', actual);
}
export { matchesExpectedVersion };

function checkSizes(events: readonly unknown[], limits: Limits): void {
  // A JSON text of n UTF-16 units is at most 3n UTF-8 bytes: only texts that might be over a
  // limit are encoded to count their bytes exactly.
  const bytes = (json: string, limit: number) =>
    json.length * 3 <= limit ? json.length : encoder.encode(json).length;
  let total = 0;
  let units = 0;
  events.forEach((event, i) => {
    const json = JSON.stringify(event) ?? '';
    const size = bytes(json, limits.maxEventBytes);
    if (size > limits.maxEventBytes) throw payloadTooLarge(`events.${i}`, size, limits.maxEventBytes);
    total += size;
    units += json.length;
  });
  // Stricter than the server's per-event rule: a batch the server could never accept in one
  // request would block the outbox forever, so it is refused here, before it is stored.
  if (units * 3 > limits.maxRequestBytes) {
    total = events.reduce<number>((n, e) => n + encoder.encode(JSON.stringify(e) ?? '').length, 0);
    if (total > limits.maxRequestBytes) throw payloadTooLarge('append', total, limits.maxRequestBytes);
  }
}
