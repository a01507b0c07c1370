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

/** Checks an append in the protocol's order: counts and sizes first, then the stream, then shape. */
export function validateAppend(stream: string, events: readonly unknown[], limits: Limits): ValidEvent[] {
  if (!Array.isArray(events)) throw validationError('events', 'events must be an array');
  if (events.length > limits.maxEventsPerAppend) {
    throw payloadTooLarge(`append of ${events.length} events`, events.length, limits.maxEventsPerAppend);
  }
  // One text of the whole append bounds every event's and the request's size: only an append
  // that might be over a limit is measured event by event (one call is cheaper than n). A JSON
  // text of n UTF-16 units is at most 3n UTF-8 bytes.
  const whole = JSON.stringify(events) ?? '';
  if (whole.length * 3 > Math.min(limits.maxEventBytes, limits.maxRequestBytes)) checkSizes(events, limits);
  if (typeof stream !== 'string' || !STREAM.test(stream)) {
    throw validationError(
      'stream',
      'stream names are 1-200 of A-Z, a-z, 0-9 and . _ : @ + = -, starting with a letter or digit',
    );
  }
  if (events.length === 0) throw validationError('events', 'an append needs at least one event');
  const seen = new Set<string>();
  return events.map((raw, i) => {
    const at = `events.${i}`;
    if (!isRecord(raw)) throw validationError(at, 'an event must be an object');
    const { id, type, schemaVersion, data, metadata } = raw as Partial<NewEvent> & Record<string, unknown>;
    if (typeof id !== 'string' || !UUID.test(id)) throw validationError(`${at}.id`, 'event ids are UUIDs');
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
    if (seen.has(id)) throw validationError(`${at}.id`, `event id ${id} appears twice in one append`);
    seen.add(id);
    return { id, type, schemaVersion: schemaVersion ?? 1, data, metadata: metadata ?? {} };
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
