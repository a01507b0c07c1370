import type { z } from 'zod';
import type { EventEnvelope } from './envelope.ts';
import { EventType } from './envelope.ts';
import { EdgelogError, fromZodError, validationError } from './errors.ts';

type AnySchema = z.ZodType;
type Last<T extends readonly unknown[]> = T extends readonly [...unknown[], infer L] ? L : never;

/** One upcaster per consecutive pair of schemas: `(data at v_n) -> data at v_n+1`. */
export type Upcasters<S extends readonly AnySchema[]> = S extends readonly [
  infer A extends AnySchema,
  infer B extends AnySchema,
  ...infer Rest extends AnySchema[],
]
  ? [(data: z.output<A>) => z.input<B>, ...Upcasters<[B, ...Rest]>]
  : [];

export interface EventDefinitionInput<T extends string, S extends readonly [AnySchema, ...AnySchema[]]> {
  /** The event type, e.g. `'OrderPlaced'`. */
  type: T;
  /** Schemas by version: index 0 is `schemaVersion` 1; the last one is the current shape. */
  schemas: S;
  /** `upcasters[i]` turns data at version i+1 into data at version i+2. One per step, none missing. */
  upcasters?: Upcasters<S>;
}

/** A declared event type; `Data` is the current version's data type. */
export interface EventDefinition<T extends string = string, Data = unknown> {
  readonly type: T;
  /** The current (newest) schema version. */
  readonly schemaVersion: number;
  /** Validates data written at `schemaVersion` (default: current) and returns it parsed. */
  parse(data: unknown, schemaVersion?: number): unknown;
  /** Reads stored data of any known version as the current shape (I8). */
  upcast(data: unknown, fromVersion: number): Data;
}

export type DataOf<D> = D extends EventDefinition<string, infer Data> ? Data : never;

/**
 * Declares an event type once: its schemas per version and the upcasters between them.
 * A missing upcaster step is an error here, at definition time, not when an old event is read.
 */
export function defineEvent<const T extends string, const S extends readonly [AnySchema, ...AnySchema[]]>(
  input: EventDefinitionInput<T, S>,
): EventDefinition<T, z.output<Last<S>>> {
  const typeCheck = EventType.safeParse(input.type);
  if (!typeCheck.success) {
    throw new EdgelogError(
      'Definition',
      `event type '${input.type}': ${typeCheck.error.issues[0]?.message}`,
      {
        type: input.type,
      },
    );
  }
  const schemas = input.schemas as readonly AnySchema[];
  const upcasters = (input.upcasters ?? []) as unknown as ReadonlyArray<
    ((data: unknown) => unknown) | undefined
  >;
  if (schemas.length === 0) {
    throw new EdgelogError('Definition', `event type '${input.type}' has no schema`, { type: input.type });
  }
  for (let v = 1; v < schemas.length; v++) {
    if (typeof upcasters[v - 1] !== 'function') {
      throw new EdgelogError(
        'Definition',
        `event type '${input.type}' has schemas up to version ${schemas.length} but no upcaster from version ${v} to ${v + 1}`,
        { type: input.type, missingFrom: v },
      );
    }
  }
  if (upcasters.length > schemas.length - 1) {
    throw new EdgelogError(
      'Definition',
      `event type '${input.type}' has ${upcasters.length} upcasters for ${schemas.length} schemas`,
      { type: input.type },
    );
  }
  const current = schemas.length;
  const schemaAt = (version: number): AnySchema => {
    const schema = schemas[version - 1];
    if (!Number.isInteger(version) || !schema) {
      throw validationError([
        {
          path: 'schemaVersion',
          message: `event type '${input.type}' has no schema version ${version} (1..${current})`,
        },
      ]);
    }
    return schema;
  };
  return {
    type: input.type,
    schemaVersion: current,
    parse(data, schemaVersion = current) {
      const result = schemaAt(schemaVersion).safeParse(data);
      if (!result.success) throw fromZodError(result.error, 'data');
      return result.data;
    },
    upcast(data, fromVersion) {
      let value = this.parse(data, fromVersion);
      for (let v = fromVersion; v < current; v++) value = this.parse(upcasters[v - 1]!(value), v + 1);
      return value as z.output<Last<S>>;
    },
  };
}

/** The union of typed envelopes of a list of event definitions, discriminated by `type`. */
export type EventOf<Defs extends readonly EventDefinition[]> = {
  [K in keyof Defs]: Defs[K] extends EventDefinition<infer T, infer D> ? EventEnvelope<T, D> : never;
}[number];

/** The union of `{ type, data }` an app may append for a list of event definitions. */
export type EventInputOf<Defs extends readonly EventDefinition[]> = {
  [K in keyof Defs]: Defs[K] extends EventDefinition<infer T, infer D>
    ? { type: T; data: D; metadata?: Record<string, unknown> }
    : never;
}[number];

export interface EventRegistry<Defs extends readonly EventDefinition[] = readonly EventDefinition[]> {
  readonly definitions: Defs;
  has(type: string): boolean;
  /** Validates an event to append; returns the data parsed and the schema version written. */
  validate(event: { type: string; data: unknown; schemaVersion?: number }): {
    data: unknown;
    schemaVersion: number;
  };
  /** Reads a stored envelope as the current shape of its type; unknown types pass unchanged. */
  upcast<E extends EventEnvelope>(envelope: E): E;
}

/** Collects event definitions into a registry used for appends (validate) and reads (upcast). */
export function eventRegistry<const Defs extends readonly EventDefinition[]>(
  definitions: Defs,
): EventRegistry<Defs> {
  const byType = new Map<string, EventDefinition>();
  for (const d of definitions) {
    if (byType.has(d.type))
      throw new EdgelogError('Definition', `event type '${d.type}' is defined twice`, undefined);
    byType.set(d.type, d);
  }
  return {
    definitions,
    has: (type) => byType.has(type),
    validate(event) {
      const def = byType.get(event.type);
      if (!def) throw validationError([{ path: 'type', message: `unknown event type '${event.type}'` }]);
      const schemaVersion = event.schemaVersion ?? def.schemaVersion;
      return { data: def.parse(event.data, schemaVersion), schemaVersion };
    },
    upcast(envelope) {
      const def = byType.get(envelope.type);
      if (!def || envelope.schemaVersion === def.schemaVersion) return envelope;
      return {
        ...envelope,
        data: def.upcast(envelope.data, envelope.schemaVersion),
        schemaVersion: def.schemaVersion,
      };
    },
  };
}
