import type { EventEnvelope } from './envelope.ts';
import { EdgelogError } from './errors.ts';

/**
 * A named, versioned, pure keyed fold: each event goes to zero, one or several keys, and
 * the row of each key evolves from `initialState(key)`. One definition runs in the browser
 * worker (over IndexedDB) and at the edge (over Durable Object SQLite).
 */
export interface ProjectionDefinition<State = unknown, Event extends EventEnvelope = EventEnvelope> {
  readonly name: string;
  /** Bump to rebuild: a new version builds beside the old one. */
  readonly version: number;
  /** Only these event types reach `key`/`evolve`; default all. */
  readonly types?: readonly string[];
  /** The row(s) an event touches; `null`/`undefined`/`[]` for none. */
  key(event: Event): string | readonly string[] | null | undefined;
  initialState(key: string): State;
  /** The new row; `null` deletes it. */
  evolve(state: State, event: Event): State | null;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

export function defineProjection<State, Event extends EventEnvelope = EventEnvelope>(
  definition: ProjectionDefinition<State, Event>,
): ProjectionDefinition<State, Event> {
  if (!NAME.test(definition.name)) {
    throw new EdgelogError(
      'Definition',
      `projection name '${definition.name}' must match ${NAME}`,
      undefined,
    );
  }
  if (!Number.isInteger(definition.version) || definition.version < 1) {
    throw new EdgelogError(
      'Definition',
      `projection '${definition.name}' needs an integer version >= 1`,
      undefined,
    );
  }
  return definition;
}

export function projectionHandles(definition: ProjectionDefinition<unknown, never>, type: string): boolean {
  return definition.types === undefined || definition.types.includes(type);
}

/** The keys a batch of events touches, to load them before `projectEvents`. */
export function keysOf<S, E extends EventEnvelope>(
  definition: ProjectionDefinition<S, E>,
  events: readonly E[],
): string[] {
  const keys = new Set<string>();
  for (const event of events) {
    if (!projectionHandles(definition as ProjectionDefinition<unknown, never>, event.type)) continue;
    const k = definition.key(event);
    if (k === null || k === undefined) continue;
    for (const key of typeof k === 'string' ? [k] : k) keys.add(key);
  }
  return [...keys];
}

/**
 * Folds a batch into the rows it touches. `current` holds the stored rows of `keysOf(events)`
 * (absent = no row yet); the answer maps each touched key to its new row, or `null` to delete.
 */
export function projectEvents<S, E extends EventEnvelope>(
  definition: ProjectionDefinition<S, E>,
  events: readonly E[],
  current: ReadonlyMap<string, S>,
): Map<string, S | null> {
  const changed = new Map<string, S | null>();
  for (const event of events) {
    if (!projectionHandles(definition as ProjectionDefinition<unknown, never>, event.type)) continue;
    const k = definition.key(event);
    if (k === null || k === undefined) continue;
    for (const key of typeof k === 'string' ? [k] : k) {
      const before = changed.has(key) ? changed.get(key) : current.get(key);
      const state = before === null || before === undefined ? definition.initialState(key) : before;
      changed.set(key, definition.evolve(state, event));
    }
  }
  return changed;
}
