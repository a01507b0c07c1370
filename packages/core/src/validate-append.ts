import type { z } from 'zod';
import { NewEvent, StreamName } from './envelope.ts';
import { fromZodError, payloadTooLarge, validationError } from './errors.ts';
import type { Limits } from './limits.ts';
import { eventSize } from './limits.ts';

/**
 * Checks an append the way every store must, in the protocol's order: sizes first (an
 * oversize event is refused whole before anything else is looked at), then shape.
 * Returns the events parsed, with `schemaVersion` defaulted to 1 and `metadata` to `{}`.
 */
export function validateAppend(
  stream: string,
  events: readonly unknown[],
  limits: Limits,
): Array<z.infer<typeof NewEvent> & { schemaVersion: number; metadata: Record<string, unknown> }> {
  if (!Array.isArray(events)) throw validationError([{ path: 'events', message: 'events must be an array' }]);
  if (events.length > limits.maxEventsPerAppend) {
    throw payloadTooLarge('the append', events.length, limits.maxEventsPerAppend, 'events');
  }
  events.forEach((event, i) => {
    const size = eventSize(event);
    if (size > limits.maxEventBytes) throw payloadTooLarge(`events.${i}`, size, limits.maxEventBytes);
  });
  const streamCheck = StreamName.safeParse(stream);
  if (!streamCheck.success) throw fromZodError(streamCheck.error, 'stream');
  if (events.length === 0)
    throw validationError([{ path: 'events', message: 'an append needs at least one event' }]);
  const seen = new Set<string>();
  return events.map((event, i) => {
    const parsed = NewEvent.safeParse(event);
    if (!parsed.success) throw fromZodError(parsed.error, `events.${i}`);
    if (seen.has(parsed.data.id)) {
      throw validationError([
        { path: `events.${i}.id`, message: `event id ${parsed.data.id} appears twice in one append` },
      ]);
    }
    seen.add(parsed.data.id);
    return {
      ...parsed.data,
      schemaVersion: parsed.data.schemaVersion ?? 1,
      metadata: parsed.data.metadata ?? {},
    };
  });
}
