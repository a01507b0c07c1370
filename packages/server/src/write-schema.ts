import { EdgelogError, type EventRegistry, type ValidEvent, validationError } from '@edgelog/core';

/**
 * With a registry (`configureEdge({ registry })`), an event of a type the registry defines is
 * checked against that type's schema before anything is written: its data must be valid at the
 * schema version it names, or at the type's current version when it names none (never version
 * 1 by default, which would make later reads upcast current data as old data). A violation is a
 * 400 naming the field, `events.<i>.data.<path>`, like every other shape error. The data is
 * stored as the schema parsed it. Types the registry does not define pass unchecked, so an edge
 * can serve writers newer than itself; the client SDK, which knows the app's own types, refuses
 * them (see the README's limits).
 *
 * `EDGELOG_WRITE_VALIDATION=off` turns this off, for importing history that the current schemas
 * no longer accept (such events are parked by projections that cannot upcast them).
 */
export function checkSchemas(
  registry: EventRegistry | undefined,
  events: ValidEvent[],
  raw: readonly unknown[],
): ValidEvent[] {
  if (!registry) return events;
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    if (!registry.has(event.type)) continue;
    const given = (raw[i] as { schemaVersion?: unknown }).schemaVersion;
    try {
      const valid = registry.validate({
        type: event.type,
        data: event.data,
        ...(given === undefined ? {} : { schemaVersion: event.schemaVersion }),
      });
      events[i] = { ...event, data: valid.data as ValidEvent['data'], schemaVersion: valid.schemaVersion };
    } catch (e) {
      throw prefixed(e, `events.${i}`);
    }
  }
  return events;
}

/** The same error with every issue's path under `prefix`. */
function prefixed(e: unknown, prefix: string): unknown {
  if (!(e instanceof EdgelogError) || e.code !== 'Validation') return e;
  const issues =
    (e.details as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues ?? [];
  return validationError(
    issues.map((i) => ({ path: i.path ? `${prefix}.${i.path}` : prefix, message: i.message })),
  );
}
