import type { EventEnvelope, NewEvent } from './envelope.ts';
import { isEdgelogError } from './errors.ts';
import type { EventRegistry } from './event-definition.ts';
import type { EventStore } from './event-store.ts';
import type { IdSource } from './ports.ts';
import { randomId } from './ports.ts';

/** An event as a decider sees it: its type and data (envelopes satisfy it too). */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
  metadata?: Record<string, unknown>;
}

/**
 * A pure decision model. `decide` returns the events a command causes, or throws (for
 * example `error('CommandRejected', ...)`) to refuse it; time and ids come in with the command.
 */
export interface Decider<Command, Event extends DomainEvent, State> {
  initialState: () => State;
  evolve: (state: State, event: Event) => State;
  decide: (command: Command, state: State) => Event | readonly Event[];
}

export interface AggregateLoad<State> {
  state: State;
  /** The stream's version (0 when it does not exist). */
  version: number;
  /** Events folded during this load (after any snapshot). */
  replayed: number;
}

export interface LoadOptions<State> {
  /** Upcasts stored events to their current shape before `evolve` sees them. */
  registry?: EventRegistry;
  /** Starts from a snapshot instead of the initial state. */
  from?: { state: State; version: number };
  /** Page size of the reads; default the store's. */
  pageSize?: number;
}

/** Folds a stream into state, page by page. A missing stream is the initial state at version 0. */
export async function aggregateStream<State, Event extends DomainEvent>(
  store: EventStore,
  stream: string,
  evolve: (state: State, event: Event) => State,
  initialState: () => State,
  options: LoadOptions<State> = {},
): Promise<AggregateLoad<State>> {
  let state = options.from ? options.from.state : initialState();
  let version = options.from ? options.from.version : 0;
  let replayed = 0;
  for (;;) {
    let page: { events: EventEnvelope[]; version: number };
    try {
      page = await store.readStream(stream, {
        from: version + 1,
        ...(options.pageSize ? { limit: options.pageSize } : {}),
      });
    } catch (e) {
      if (isEdgelogError(e, 'StreamNotFound')) return { state, version: 0, replayed };
      throw e;
    }
    for (const stored of page.events) {
      const event = options.registry ? options.registry.upcast(stored) : stored;
      state = evolve(state, event as unknown as Event);
      version = stored.version;
      replayed++;
    }
    if (page.events.length === 0 || version >= page.version) return { state, version, replayed };
  }
}

export interface CommandHandlerOptions {
  /** Attempts after the first when another writer moved the stream. Default 3. */
  maxRetries?: number;
  registry?: EventRegistry;
  newId?: IdSource;
  /** Metadata stamped on every event the command causes (e.g. a correlation id). */
  metadata?: Record<string, unknown>;
}

export interface CommandResult<State> {
  /** The events appended (empty when the decider decided nothing). */
  events: NewEvent[];
  /** State after the new events. */
  state: State;
  /** The stream's version after the append. */
  version: number;
  positions: number[];
}

/**
 * Loads the aggregate, decides, and appends with the version it loaded; when another
 * writer got there first (WrongExpectedVersion) it reloads and decides again, a bounded
 * number of times. A refusal by `decide` is thrown as it is.
 */
export async function handleCommand<Command, Event extends DomainEvent, State>(
  store: EventStore,
  decider: Decider<Command, Event, State>,
  stream: string,
  command: Command,
  options: CommandHandlerOptions = {},
): Promise<CommandResult<State>> {
  const maxRetries = options.maxRetries ?? 3;
  const newId = options.newId ?? randomId;
  for (let attempt = 0; ; attempt++) {
    const loaded = await aggregateStream(
      store,
      stream,
      decider.evolve,
      decider.initialState,
      options.registry ? { registry: options.registry } : {},
    );
    const decided = decider.decide(command, loaded.state);
    const list: readonly Event[] = Array.isArray(decided) ? decided : [decided as Event];
    if (list.length === 0) return { events: [], state: loaded.state, version: loaded.version, positions: [] };
    const events: NewEvent[] = list.map((e) => {
      const metadata = { ...options.metadata, ...e.metadata };
      const validated = options.registry?.validate(e);
      return {
        id: newId(),
        type: e.type,
        data: validated ? validated.data : e.data,
        ...(validated ? { schemaVersion: validated.schemaVersion } : {}),
        ...(Object.keys(metadata).length > 0 ? { metadata } : {}),
      };
    });
    try {
      const result = await store.append(stream, events, {
        expectedVersion: loaded.version === 0 ? 'no_stream' : loaded.version,
      });
      return { events, state: list.reduce(decider.evolve, loaded.state), ...result };
    } catch (e) {
      if (!isEdgelogError(e, 'WrongExpectedVersion') || attempt >= maxRetries) throw e;
    }
  }
}
