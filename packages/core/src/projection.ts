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
  /**
   * What to do when `key` or `evolve` throws on an event: `'park'` (default) records the event
   * and its error and goes on without it; `'stop'` halts this projection before the event.
   */
  readonly onError?: 'park' | 'stop';
}

/** An event a projection threw on, kept aside with the reason. */
export interface ParkedEvent {
  position: number;
  eventId: string;
  stream: string;
  type: string;
  error: string;
}

export interface ProjectedBatch<S> {
  /** Touched keys and their new rows (`null` = delete). */
  changed: Map<string, S | null>;
  /** Events skipped because the projection threw on them (policy `'park'`). */
  parked: ParkedEvent[];
  /** Set when the policy is `'stop'` and an event threw: only events before it were applied. */
  stoppedAt?: ParkedEvent;
  /** Position of the last event applied or parked (0 when none). */
  through: number;
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

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** What a store passes to `projectBatch` besides the events. */
export interface ProjectBatchOptions<E extends EventEnvelope> {
  /**
   * Reads a stored event as its current shape (core's `eventRegistry(...).upcast`). It runs
   * inside the same guard as the fold: an event that does not upcast is parked like one the
   * projection threw on, instead of failing the whole batch.
   */
  upcast?: (event: E) => E;
  /**
   * Checks each state an event makes (not `null`, which deletes the row), inside the same
   * guard: a state it throws on parks the event, or stops the fold, as a throwing `evolve` would.
   * Stores pass one when they have found a state they cannot store (see `jsonStateCheck`).
   */
  check?: (state: unknown, key: string) => void;
}

/**
 * A `check` for stores that keep states as JSON text: refuses a state `JSON.stringify` throws
 * on (a BigInt, a cycle) or turns into nothing (`undefined`, a function).
 */
export function jsonStateCheck(state: unknown, key: string): void {
  const json = jsonText(state);
  if ('why' in json) throw new Error(`the state of key '${key}' cannot be stored as JSON: ${json.why}`);
}

/** `JSON.stringify(state)`, or why JSON cannot hold it (it throws, or makes nothing). */
function jsonText(state: unknown): { text: string } | { why: string } {
  try {
    const text = JSON.stringify(state);
    return typeof text === 'string' ? { text } : { why: `it is ${typeof state}` };
  } catch (e) {
    return { why: errorMessage(e) };
  }
}

/**
 * `keysOf` for a batch that `projectBatch` will fold: an event whose upcast or key function
 * throws contributes no key (`projectBatch` parks it with the same error).
 */
export function keysOfBatch<S, E extends EventEnvelope>(
  definition: ProjectionDefinition<S, E>,
  events: readonly E[],
  options: ProjectBatchOptions<E> = {},
): string[] {
  const keys = new Set<string>();
  const upcast = options.upcast;
  for (const event of events) {
    if (!projectionHandles(definition as ProjectionDefinition<unknown, never>, event.type)) continue;
    try {
      const k = definition.key(upcast ? upcast(event) : event);
      if (k === null || k === undefined) continue;
      for (const key of typeof k === 'string' ? [k] : k) keys.add(key);
    } catch {
      // parked by projectBatch
    }
  }
  return [...keys];
}

/**
 * `projectEvents` for stores that run projections unattended (the browser worker and the
 * edge): an event the projection (or its upcast) throws on leaves every row as it was, and is
 * parked (or stops the projection, by its policy) without wedging the events after it. Both
 * sides call this one function, so one definition gives the same read model on both.
 */
export function projectBatch<S, E extends EventEnvelope>(
  definition: ProjectionDefinition<S, E>,
  events: readonly E[],
  current: ReadonlyMap<string, S>,
  options: ProjectBatchOptions<E> = {},
): ProjectedBatch<S> {
  const changed = new Map<string, S | null>();
  const parked: ParkedEvent[] = [];
  const { upcast, check } = options;
  let through = 0;
  for (const stored of events) {
    const position = stored.position ?? 0;
    if (projectionHandles(definition as ProjectionDefinition<unknown, never>, stored.type)) {
      const staged = new Map<string, S | null>();
      try {
        const event = upcast ? upcast(stored) : stored;
        const k = definition.key(event);
        const keys = k === null || k === undefined ? [] : typeof k === 'string' ? [k] : k;
        for (const key of keys) {
          const before = staged.has(key)
            ? staged.get(key)
            : changed.has(key)
              ? changed.get(key)
              : current.get(key);
          const state = before === null || before === undefined ? definition.initialState(key) : before;
          const next = definition.evolve(state, event);
          if (check && next !== null) check(next, key);
          staged.set(key, next);
        }
      } catch (e) {
        const record = {
          position,
          eventId: stored.id,
          stream: stored.stream,
          type: stored.type,
          error: errorMessage(e),
        };
        if (definition.onError === 'stop') return { changed, parked, stoppedAt: record, through };
        parked.push(record);
        through = position;
        continue;
      }
      for (const [key, value] of staged) changed.set(key, value);
    }
    through = position;
  }
  return { changed, parked, through };
}

/** The text each changed state is stored as (`null` deletes its row), or undefined if one is not JSON. */
function jsonTexts(changed: ReadonlyMap<string, unknown>): Map<string, string | null> | undefined {
  const texts = new Map<string, string | null>();
  for (const [key, state] of changed) {
    if (state === null) {
      texts.set(key, null);
      continue;
    }
    const json = jsonText(state);
    if ('why' in json) return undefined;
    texts.set(key, json.text);
  }
  return texts;
}

/**
 * `projectBatch` for stores that keep states as JSON (the edge as text, the browser as what the
 * text reads back as), with the text of each changed state (`null` deletes the row). A batch
 * that leaves a state JSON cannot hold (a BigInt, a cycle, `undefined`) is folded again from
 * `current` with `jsonStateCheck`, so that the event that made it is parked or stops the
 * projection, as one its `evolve` threw on would: retrying could never store it. Both sides
 * call this, so one definition gives the same rows on both.
 */
export function projectBatchAsJson<S, E extends EventEnvelope>(
  definition: ProjectionDefinition<S, E>,
  events: readonly E[],
  current: ReadonlyMap<string, S>,
  options: ProjectBatchOptions<E> = {},
): { out: ProjectedBatch<S>; texts: Map<string, string | null> } {
  const out = projectBatch(definition, events, current, options);
  const texts = jsonTexts(out.changed);
  if (texts !== undefined) return { out, texts };
  const checked = projectBatch(definition, events, current, { ...options, check: jsonStateCheck });
  const checkedTexts = jsonTexts(checked.changed);
  // A plain Error (an Internal one to the stores): `error()` would pull core's zod schemas into
  // the browser worker's bundle.
  if (checkedTexts === undefined) throw new Error('a checked projection state is not JSON');
  return { out: checked, texts: checkedTexts };
}

/**
 * `upcast` remembering each event's answer, its result or its error, for one batch: a store
 * that asks `keysOfBatch` and then `projectBatch` (or several projections) about the same
 * events upcasts each of them once.
 */
export function upcastOnce<E extends EventEnvelope>(upcast: (e: E) => E): (e: E) => E {
  const seen = new Map<E, { ok: E } | { error: unknown }>();
  return (e) => {
    let answer = seen.get(e);
    if (answer === undefined) {
      try {
        answer = { ok: upcast(e) };
      } catch (thrown) {
        answer = { error: thrown };
      }
      seen.set(e, answer);
    }
    if ('error' in answer) throw answer.error;
    return answer.ok;
  };
}
