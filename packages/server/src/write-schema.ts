import { EdgelogError, type EventRegistry, type ValidEvent, validationError } from '@edgelog/core';

/**
 * With a registry (`configureEdge({ registry })`), an event of a type the registry defines is
 * checked against that type's schema before anything is written: its data must be valid at the
 * schema version it names, or at the type's current version when it names none (never version
 * 1 by default, which would make later reads upcast current data as old data). A violation is a
 * 400 naming the field, `events.<i>.data.<path>`, like every other shape error. The data is
 * stored as sent: a schema that transforms is not applied twice (the client SDK sends its own
 * parse's output). Types the registry does not define, and versions above a type's current
 * one, pass unchecked, so an edge can serve writers newer than itself during a rolling deploy
 * (projections park what they cannot upcast); the client SDK, which knows the app's own types,
 * refuses unknown ones.
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
  const versions = currentVersions(registry);
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const current = versions.get(event.type);
    if (current === undefined) continue;
    const given = (raw[i] as { schemaVersion?: unknown }).schemaVersion;
    if (given !== undefined && event.schemaVersion > current) continue;
    try {
      const valid = registry.validate({
        type: event.type,
        data: event.data,
        ...(given === undefined ? {} : { schemaVersion: event.schemaVersion }),
      });
      events[i] = { ...event, schemaVersion: valid.schemaVersion };
    } catch (e) {
      throw prefixed(e, `events.${i}`);
    }
  }
  return events;
}

const versionsOf = new WeakMap<EventRegistry, ReadonlyMap<string, number>>();
/** Each defined type's current schema version. */
function currentVersions(registry: EventRegistry): ReadonlyMap<string, number> {
  let versions = versionsOf.get(registry);
  if (!versions) {
    versions = new Map(registry.definitions.map((d) => [d.type, d.schemaVersion]));
    versionsOf.set(registry, versions);
  }
  return versions;
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
