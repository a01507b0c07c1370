import { DurableObject } from 'cloudflare:workers';
import {
  ClientMessage,
  type EventEnvelope,
  type ExpectedVersion,
  error,
  idempotencyConflict,
  matchesExpectedVersion,
  type NewEvent,
  type ReadStreamQuery,
  type ReadStreamResponse,
  type ServerMessage,
  streamNotFound,
  toWireError,
  validationError,
  type WireError,
} from '@edgelog/core';
import { z } from 'zod';
import { type AggregateOutcome, loadAggregate } from './aggregate.ts';
import { Claims, checkStore, checkStream, jwtSecret, verifyToken } from './auth.ts';
import type { ServerEnv } from './env.ts';
import {
  AUTHOR_KEY,
  type CommitOutcome,
  type LoggedEvent,
  type SequencedEvent,
  toEnvelope,
} from './log-row.ts';
import { upcastMessage } from './read-upcast.ts';
import type { SequencerApi } from './sequencer-do.ts';
import { insertRows } from './sql-batch.ts';

export interface AppendInput {
  store: string;
  stream: string;
  /** Stamped as metadata `$author`; never taken from the client. */
  author: string;
  expectedVersion?: ExpectedVersion;
  events: z.infer<typeof NewEvent>[];
  /** Bench-only: commit locally without the sequencer (positions are then fake). */
  bypassSequencer?: boolean;
}

/** The answer to one append, shaped so that push can forward it commit by commit. */
export type AppendOutcome =
  | { status: 'committed' | 'duplicate'; version: number; positions: number[] }
  | { status: 'conflict'; expected: ExpectedVersion; version: number; events: EventEnvelope[] }
  | { status: 'rejected'; error: WireError };

/**
 * The StreamDO's RPC surface as the Worker sees it. Workers RPC maps `unknown` payloads
 * (event data) to unusable types, so the stub is typed by hand here, once.
 */
export interface StreamApi {
  append(input: AppendInput): Promise<AppendOutcome>;
  fetch(request: Request): Promise<Response>;
  read(store: string, stream: string, query: ReadStreamQuery): Promise<ReadOutcome>;
  loadAggregate(store: string, stream: string, decider: string): Promise<AggregateOutcome>;
}

export type ReadOutcome = { ok: true; page: ReadStreamResponse } | { ok: false; error: WireError };

/** Test-only crash points of the StreamDO (see README, crash safety). */
export type StreamFault = 'before-sequencer-commit' | 'after-sequencer-commit';

const StreamSocketState = z.object({
  store: z.string(),
  stream: z.string(),
  claims: z.optional(Claims),
  subs: z.array(
    z.object({ id: z.string(), cursor: z.number().int().min(0), types: z.optional(z.array(z.string())) }),
  ),
});
type StreamSocketState = z.infer<typeof StreamSocketState>;

const CATCH_UP_PAGE = 500;
const HEARTBEAT_MS = 25_000;
const MAX_CONFLICT_EVENTS = 5000;
const DEFAULT_PAGE = 500;
const SYNC_PAGE = 1000;
const SELECT_EVENTS =
  'SELECT id, ? AS stream, version, type, schema_version, data, metadata, position, recorded_at FROM events';

/**
 * One per (store, stream). Serialises appends to its stream and keeps the stream's committed
 * events in SQLite for fast reads. The store's global log (SequencerDO) is the source of
 * truth: an append is committed when the sequencer has written it, and the StreamDO's table
 * is a copy of its stream's slice of that log. A StreamDO that may have missed a commit (it
 * was restarted, or a sequencer call ended without an answer) copies the stream's tail from
 * the log before it answers anything.
 */
export class StreamDO extends DurableObject<ServerEnv> {
  private tail: Promise<unknown> = Promise.resolve();
  /** False after a start and after a commit with an unknown outcome: sync before answering. */
  private synced = false;
  /** The copy of the last commit into this table, written just after the answer went out. */
  private copying: Promise<void> | undefined;
  /** Test-only: crash at this point of the next append. */
  fault: StreamFault | undefined;

  constructor(ctx: DurableObjectState, env: ServerEnv) {
    super(ctx, env);
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS events (
      version INTEGER PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      type TEXT NOT NULL,
      schema_version INTEGER NOT NULL,
      data TEXT NOT NULL,
      metadata TEXT NOT NULL,
      position INTEGER NOT NULL,
      recorded_at TEXT NOT NULL
    )`);
  }

  /** Runs `fn` after every earlier exclusive call has settled, across all its awaits. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  append(input: AppendInput): Promise<AppendOutcome> {
    return this.exclusive(async () => {
      try {
        return await this.appendExclusive(input);
      } catch (e) {
        return { status: 'rejected', error: toWireError(e) };
      }
    });
  }

  /** Stream read, after any needed sync with the global log. */
  read(store: string, stream: string, query: ReadStreamQuery): Promise<ReadOutcome> {
    const answer = (): ReadOutcome => {
      const version = this.version();
      if (version === 0) return { ok: false, error: streamNotFound(stream).toWire() };
      const limit = query.limit ?? DEFAULT_PAGE;
      const sql = this.ctx.storage.sql;
      const rows =
        query.direction === 'backward'
          ? sql.exec(
              `${SELECT_EVENTS} WHERE version <= ? ORDER BY version DESC LIMIT ?`,
              stream,
              query.from ?? version,
              limit,
            )
          : sql.exec(
              `${SELECT_EVENTS} WHERE version >= ? ORDER BY version LIMIT ?`,
              stream,
              query.from ?? 1,
              limit,
            );
      return { ok: true, page: { events: rows.toArray().map(toEnvelope), version } };
    };
    const guarded = async (): Promise<ReadOutcome> => {
      try {
        await this.copying;
        await this.sync(store, stream);
        return answer();
      } catch (e) {
        return { ok: false, error: toWireError(e) };
      }
    };
    // Reads need the mutex only until the first sync; afterwards the table is current.
    return this.synced ? guarded() : this.exclusive(guarded);
  }

  /** Folds the stream with a configured decider, from its snapshot (see aggregate.ts). */
  loadAggregate(store: string, stream: string, decider: string): Promise<AggregateOutcome> {
    return loadAggregate(this.ctx.storage.sql, decider, stream, (from, limit) =>
      this.read(store, stream, { from, limit }),
    );
  }

  private async appendExclusive(input: AppendInput, attempt = 0): Promise<AppendOutcome> {
    const { store, stream, events } = input;
    await this.copying;
    const ids = events.map((e) => e.id);
    if (new Set(ids).size !== ids.length)
      throw validationError([{ path: 'events', message: 'event ids must be unique within an append' }]);
    await this.sync(store, stream);

    // Idempotency before the expected version: a full retry answers the original outcome.
    const sql = this.ctx.storage.sql;
    const stored = this.storedIds(ids);
    const found = stored.filter((r) => r !== undefined);
    if (found.length === ids.length) {
      return {
        status: 'duplicate',
        version: Math.max(...found.map((r) => r.version)),
        positions: found.map((r) => r.position),
      };
    }
    if (found.length > 0) {
      const storedIds = ids.filter((_, i) => stored[i] !== undefined);
      throw idempotencyConflict(
        stream,
        storedIds,
        ids.filter((_, i) => stored[i] === undefined),
      );
    }

    const version = this.version();
    const expected = input.expectedVersion ?? 'any';
    if (!matchesExpectedVersion(expected, version)) {
      const after = typeof expected === 'number' ? expected : 0;
      const unseen = sql
        .exec(
          `${SELECT_EVENTS} WHERE version > ? ORDER BY version LIMIT ?`,
          stream,
          after,
          MAX_CONFLICT_EVENTS,
        )
        .toArray()
        .map(toEnvelope);
      return { status: 'conflict', expected, version, events: unseen };
    }

    const rows: SequencedEvent[] = events.map((e, i) => ({
      id: e.id,
      version: version + 1 + i,
      type: e.type,
      schemaVersion: e.schemaVersion ?? 1,
      data: JSON.stringify(e.data),
      metadata: JSON.stringify({ ...e.metadata, [AUTHOR_KEY]: input.author }),
    }));

    if (input.bypassSequencer && this.env.EDGELOG_BENCH === '1') {
      // Bench-only: the same local write without the sequencer; positions are stand-ins.
      const recordedAt = new Date().toISOString();
      this.insert(rows.map((r) => ({ ...r, position: r.version, recordedAt })));
      return { status: 'committed', version: version + rows.length, positions: rows.map((r) => r.version) };
    }

    if (this.fault === 'before-sequencer-commit') this.crash();
    let outcome: CommitOutcome;
    try {
      outcome = await this.sequencer(store).commit({ commitId: crypto.randomUUID(), stream, events: rows });
    } catch (e) {
      // The batch may or may not be in the log: find out from the log before the next answer.
      this.synced = false;
      throw e;
    }
    if (this.fault === 'after-sequencer-commit') this.crash();
    switch (outcome.status) {
      case 'rejected':
        return outcome;
      case 'stale':
        // The log has commits this table missed (a crash window): copy them, then decide again.
        this.synced = false;
        if (attempt > 0) throw error('Internal', `stream '${stream}' could not catch up with the global log`);
        return this.appendExclusive(input, attempt + 1);
      case 'committed': {
        const logged = rows.map((r, i) => ({
          ...r,
          position: outcome.firstPosition + i,
          recordedAt: outcome.recordedAt,
        }));
        this.copyAfterAnswer(logged);
        // The sequencer answered, so the commit is durable in the log: tell the stream's sockets.
        this.broadcast(stream, logged);
        return {
          status: outcome.duplicate ? 'duplicate' : 'committed',
          version: version + rows.length,
          positions: rows.map((_, i) => outcome.firstPosition + i),
        };
      }
      default: {
        const never: never = outcome;
        return never;
      }
    }
  }

  // ---- WebSocket subscribers of this stream (hibernating) -------------------------------

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket')
      return new Response('expected a WebSocket upgrade', { status: 426 });
    const claimsHeader = request.headers.get('x-edgelog-claims');
    const state: StreamSocketState = {
      store: request.headers.get('x-edgelog-store') ?? '',
      stream: request.headers.get('x-edgelog-stream') ?? '',
      subs: [],
    };
    if (claimsHeader) state.claims = Claims.parse(JSON.parse(claimsHeader));
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].serializeAttachment(state);
    if (state.claims) sendTo(pair[1], { type: 'ready', head: this.lastPosition() });
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /** Heartbeats for the stream's sockets; `head` is the stream's last position. */
  override async alarm(): Promise<void> {
    const sockets = this.ctx.getWebSockets();
    const head = this.lastPosition();
    for (const ws of sockets) sendTo(ws, { type: 'heartbeat', head });
    if (sockets.length > 0) await this.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const state = StreamSocketState.safeParse(ws.deserializeAttachment());
    if (!state.success) {
      ws.close(1011, 'lost socket state');
      return;
    }
    let message: ClientMessage;
    try {
      const parsed = ClientMessage.safeParse(
        JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw)),
      );
      if (!parsed.success)
        throw validationError(
          parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        );
      message = parsed.data;
    } catch (e) {
      const wire =
        e instanceof SyntaxError
          ? validationError([{ path: '', message: 'malformed JSON' }]).toWire()
          : toWireError(e);
      sendTo(ws, { type: 'error', error: wire });
      return;
    }
    const socket = state.data;
    switch (message.type) {
      case 'auth':
        try {
          const claims = await verifyToken(message.token, jwtSecret(this.env));
          checkStore(claims, socket.store);
          checkStream(claims, socket.stream);
          socket.claims = claims;
          ws.serializeAttachment(socket);
          sendTo(ws, { type: 'ready', head: this.lastPosition() });
        } catch (e) {
          sendTo(ws, { type: 'error', error: toWireError(e) });
          ws.close(1008, 'unauthorized');
        }
        return;
      case 'subscribe': {
        if (!socket.claims) {
          sendTo(ws, {
            type: 'error',
            subscription: message.id,
            error: error('Unauthorized', 'send an auth message first').toWire(),
          });
          return;
        }
        const { id, after = 0, filter } = message;
        // Under the mutex, after the last copy: no commit is in flight, so catch-up and the
        // registration for live delivery happen with nothing in between.
        await this.exclusive(async () => {
          await this.copying;
          await this.sync(socket.store, socket.stream);
          const fresh = StreamSocketState.parse(ws.deserializeAttachment());
          const sub: StreamSocketState['subs'][number] = { id, cursor: after };
          if (filter?.types) sub.types = filter.types;
          for (;;) {
            const page = this.ctx.storage.sql
              .exec(
                `${SELECT_EVENTS} WHERE position > ? ORDER BY version LIMIT ?`,
                socket.stream,
                sub.cursor,
                CATCH_UP_PAGE,
              )
              .toArray()
              .map(toEnvelope);
            const matching = page.filter((e) => !sub.types || sub.types.includes(e.type));
            if (matching.length > 0) sendTo(ws, { type: 'events', subscription: id, events: matching });
            sub.cursor = page.at(-1)?.position ?? sub.cursor;
            if (page.length < CATCH_UP_PAGE) break;
          }
          sendTo(ws, { type: 'caught-up', subscription: id, position: sub.cursor });
          fresh.subs = [...fresh.subs.filter((s) => s.id !== id), sub];
          ws.serializeAttachment(fresh);
        });
        return;
      }
      case 'unsubscribe':
        socket.subs = socket.subs.filter((s) => s.id !== message.id);
        ws.serializeAttachment(socket);
        return;
      case 'ping':
        sendTo(ws, message.at === undefined ? { type: 'pong' } : { type: 'pong', at: message.at });
        return;
      default: {
        const never: never = message;
        return never;
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  private broadcast(stream: string, logged: LoggedEvent[]): void {
    const sockets = this.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const envelopes: EventEnvelope[] = logged.map((r) => ({
      id: r.id,
      stream,
      type: r.type,
      schemaVersion: r.schemaVersion,
      data: JSON.parse(r.data) as unknown,
      metadata: JSON.parse(r.metadata) as Record<string, unknown>,
      version: r.version,
      position: r.position,
      recordedAt: r.recordedAt,
    }));
    const last = logged.at(-1)?.position ?? 0;
    for (const ws of sockets) {
      const state = StreamSocketState.safeParse(ws.deserializeAttachment());
      if (!state.success || state.data.subs.length === 0) continue;
      for (const sub of state.data.subs) {
        const events = envelopes.filter(
          (e) => (e.position ?? 0) > sub.cursor && (!sub.types || sub.types.includes(e.type)),
        );
        if (events.length > 0) sendTo(ws, { type: 'events', subscription: sub.id, events });
        sub.cursor = Math.max(sub.cursor, last);
      }
      ws.serializeAttachment(state.data);
    }
  }

  private lastPosition(): number {
    return (
      this.ctx.storage.sql
        .exec<{ p: number | null }>('SELECT position AS p FROM events ORDER BY version DESC LIMIT 1')
        .toArray()[0]?.p ?? 0
    );
  }

  /** Copies the stream's tail from the global log when this table may be behind it. */
  private async sync(store: string, stream: string): Promise<void> {
    if (this.synced) return;
    for (;;) {
      const tail = await this.sequencer(store).streamTail(stream, this.version(), SYNC_PAGE);
      this.insert(tail);
      if (tail.length < SYNC_PAGE) break;
    }
    this.synced = true;
  }

  /**
   * The log already holds the commit durably, so the answer need not wait for this table's
   * copy: it is written in the next task, after the answer left, and every later append or
   * read waits for it. If the object dies in between, the start-up sync copies it again.
   */
  private copyAfterAnswer(rows: LoggedEvent[]): void {
    this.copying = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        try {
          this.insert(rows);
          resolve();
        } catch (e) {
          this.synced = false;
          reject(e);
        } finally {
          this.copying = undefined;
        }
      }, 0);
    });
    this.copying.catch(() => undefined);
  }

  /** Version and position of each id already in this stream (one indexed statement for the batch). */
  private storedIds(ids: string[]): Array<{ version: number; position: number } | undefined> {
    const rows = this.ctx.storage.sql.exec<{ id: string; version: number; position: number }>(
      'SELECT id, version, position FROM events WHERE id IN (SELECT value FROM json_each(?))',
      JSON.stringify(ids),
    );
    const byId = new Map<string, { version: number; position: number }>();
    for (const row of rows) byId.set(row.id, { version: row.version, position: row.position });
    return ids.map((id) => byId.get(id));
  }

  private insert(rows: LoggedEvent[]): void {
    if (rows.length === 0) return;
    insertRows(
      this.ctx.storage.sql,
      'events',
      ['version', 'id', 'type', 'schema_version', 'data', 'metadata', 'position', 'recorded_at'],
      rows.map((r) => [
        r.version,
        r.id,
        r.type,
        r.schemaVersion,
        r.data,
        r.metadata,
        r.position,
        r.recordedAt,
      ]),
    );
  }

  /** The stream's version: the number of its committed events. */
  private version(): number {
    return (
      this.ctx.storage.sql.exec<{ v: number | null }>('SELECT MAX(version) AS v FROM events').one().v ?? 0
    );
  }

  private sequencer(store: string): SequencerApi {
    return this.env.SEQUENCERS.get(this.env.SEQUENCERS.idFromName(store)) as unknown as SequencerApi;
  }

  /** Test-only: the object dies here; nothing after this line runs. */
  private crash(): never {
    this.fault = undefined;
    this.ctx.abort('injected stream fault');
    throw error('Internal', 'injected stream fault');
  }
}

function sendTo(ws: WebSocket, message: ServerMessage): void {
  try {
    ws.send(JSON.stringify(upcastMessage(message)));
  } catch {
    // The socket closed under us.
  }
}
