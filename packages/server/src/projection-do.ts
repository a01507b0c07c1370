import { DurableObject } from 'cloudflare:workers';
import type {
  EventEnvelope,
  ParkedEvent,
  ProjectBatchOptions,
  ProjectedBatch,
  WireError,
} from '@edgelog/core';
import {
  error,
  keysOfBatch,
  projectBatchAsJson,
  projectionHandles,
  toWireError,
  upcastOnce,
} from '@edgelog/core';
import { z } from 'zod';
import type { AnyProjection } from './config.ts';
import { edgeConfig, projectionDefinition, projectionVersions } from './config.ts';
import type { ServerEnv } from './env.ts';
import type { StoredChunk } from './global-log.ts';
import { unpackChunk } from './packed.ts';
import { ProjectionRows } from './projection-rows.ts';
import type { ChunkPage } from './sequencer-do.ts';

/** Which projection a ProjectionDO runs: one DO per (store, name, version). */
export interface ProjectionRef {
  store: string;
  name: string;
  version: number;
}

export type ProjectionState = 'catching-up' | 'live' | 'stopped';

export interface ProjectionStatus {
  name: string;
  version: number;
  /** Position of the last event folded (or parked). */
  checkpoint: number;
  /** The store's head when last read. */
  head: number;
  lag: number;
  state: ProjectionState;
  /** Caught up at least once: it may answer queries. */
  ready: boolean;
  parked: number;
  /** Set when the projection stopped on an event (policy `'stop'`). */
  stoppedAt?: ParkedEvent;
  /** Events folded since this object started (catch-up progress). */
  processed: number;
}

export interface RowPage {
  rows: Array<{ key: string; state: unknown }>;
  checkpoint: number;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: WireError };

/** The ProjectionDO's RPC surface as the Worker sees it (payloads are `unknown` JSON). */
export interface ProjectionApi {
  poke(ref: ProjectionRef): Promise<void>;
  status(ref: ProjectionRef): Promise<Outcome<ProjectionStatus>>;
  isReady(ref: ProjectionRef): Promise<boolean>;
  get(
    ref: ProjectionRef,
    key: string,
    wait: WaitFor,
  ): Promise<Outcome<{ state: unknown; checkpoint: number } | null>>;
  list(ref: ProjectionRef, query: ListQuery, wait: WaitFor): Promise<Outcome<RowPage>>;
  parked(ref: ProjectionRef, after: number, limit: number): Promise<Outcome<ParkedEvent[]>>;
}

export interface WaitFor {
  /** Answer only once the projection has folded this position (read-your-writes). */
  minPosition?: number;
  /** How long to wait for `minPosition`, ms. */
  timeoutMs: number;
}

export interface ListQuery {
  prefix?: string;
  /** Exclusive key to resume a listing after. */
  after?: string;
  limit: number;
}

/** Events read per page while catching up. */
const PAGE = 10_000;
/** At most about this much stored text per catch-up page (UTF-16 code units). */
const PAGE_CHARS = 4_000_000;
/**
 * Pause after each page while a new version rebuilds beside an older one (throttling: the
 * older version keeps answering, and the rebuild leaves the sequencer room for live work).
 */
export const REBUILD_REST_MS = 25;
const ParkedRow = z.object({
  position: z.number(),
  event_id: z.string(),
  stream: z.string(),
  type: z.string(),
  error: z.string(),
});

/**
 * Follows one store's global log into one projection's read model, in SQLite. Each page
 * updates the touched rows and the checkpoint in one transaction, so a page read twice (after
 * a crash, or a redelivery) changes nothing: it starts after the stored checkpoint.
 */
export class ProjectionDO extends DurableObject<ServerEnv> {
  private checkpoint: number;
  private head = 0;
  private processed = 0;
  private ready: boolean;
  private stoppedAt: ParkedEvent | undefined;
  private dirty = false;
  private running: Promise<void> | undefined;
  private failure: unknown;
  private waiters = new Set<() => void>();
  /** Events per catch-up page (tests shrink it to stretch a rebuild over many pages). */
  pageSize = PAGE;
  /** The read model's rows, with the cache a page folds from (see `ProjectionRows`). */
  private readonly rows: ProjectionRows;

  constructor(ctx: DurableObjectState, env: ServerEnv) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    this.rows = new ProjectionRows(sql);
    sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    sql.exec(`CREATE TABLE IF NOT EXISTS parked (
      position INTEGER PRIMARY KEY, event_id TEXT NOT NULL, stream TEXT NOT NULL, type TEXT NOT NULL,
      error TEXT NOT NULL, parked_at TEXT NOT NULL)`);
    this.checkpoint = Number(this.meta('checkpoint') ?? 0);
    this.ready = this.meta('ready') === '1';
    const stopped = this.meta('stopped');
    this.stoppedAt = stopped ? (JSON.parse(stopped) as ParkedEvent) : undefined;
  }

  /** The log grew: catch up in the background. */
  async poke(ref: ProjectionRef): Promise<void> {
    this.definition(ref);
    this.wake(ref);
  }

  async status(ref: ProjectionRef): Promise<Outcome<ProjectionStatus>> {
    return this.outcome(async () => {
      this.definition(ref);
      this.head = Math.max(this.head, await this.sequencer(ref.store).getHead());
      if (this.checkpoint < this.head) this.wake(ref);
      return this.describe(ref);
    });
  }

  /** Caught up at least once (kept in storage): cheap, no read of the store's head. */
  async isReady(ref: ProjectionRef): Promise<boolean> {
    if (!projectionDefinition(ref.name, ref.version)) return false;
    if (!this.ready) this.wake(ref);
    return this.ready;
  }

  async get(ref: ProjectionRef, key: string, wait: WaitFor) {
    return this.outcome(async () => {
      await this.caughtUpTo(ref, wait);
      const row = this.ctx.storage.sql
        .exec<{ state: string }>('SELECT state FROM rows WHERE key = ?', key)
        .toArray()[0];
      return row ? { state: JSON.parse(row.state) as unknown, checkpoint: this.checkpoint } : null;
    });
  }

  async list(ref: ProjectionRef, query: ListQuery, wait: WaitFor): Promise<Outcome<RowPage>> {
    return this.outcome(async () => {
      await this.caughtUpTo(ref, wait);
      const prefix = query.prefix ?? '';
      // Keys between prefix and prefix + U+10FFFF, the last code point (SQLite compares UTF-8
      // bytes, in which U+FFFF sorts before every character above it, an emoji say): an index
      // range, no LIKE escaping needed.
      const from = query.after !== undefined && query.after >= prefix ? query.after : prefix;
      const rows = this.ctx.storage.sql
        .exec<{ key: string; state: string }>(
          `SELECT key, state FROM rows WHERE key ${query.after !== undefined && query.after >= prefix ? '>' : '>='} ? AND key < ? ORDER BY key LIMIT ?`,
          from,
          `${prefix}\u{10ffff}`,
          query.limit,
        )
        .toArray();
      return {
        rows: rows.map((r) => ({ key: r.key, state: JSON.parse(r.state) as unknown })),
        checkpoint: this.checkpoint,
      };
    });
  }

  async parked(ref: ProjectionRef, after: number, limit: number): Promise<Outcome<ParkedEvent[]>> {
    return this.outcome(async () => {
      this.definition(ref);
      return this.ctx.storage.sql
        .exec(
          'SELECT position, event_id, stream, type, error FROM parked WHERE position > ? ORDER BY position LIMIT ?',
          after,
          limit,
        )
        .toArray()
        .map((raw) => {
          const r = ParkedRow.parse(raw);
          return {
            position: r.position,
            eventId: r.event_id,
            stream: r.stream,
            type: r.type,
            error: r.error,
          };
        });
    });
  }

  // ---- catch-up ------------------------------------------------------------------------

  private wake(ref: ProjectionRef): void {
    this.dirty = true;
    if (this.running || this.stoppedAt) return;
    this.running = this.drain(ref).finally(() => {
      this.running = undefined;
      if (this.dirty && !this.stoppedAt && this.failure === undefined) this.wake(ref);
    });
  }

  private async drain(ref: ProjectionRef): Promise<void> {
    const definition = this.definition(ref);
    const sequencer = this.sequencer(ref.store);
    const read = (after: number) => sequencer.readChunks(after, this.pageSize, PAGE_CHARS);
    try {
      while (this.dirty && !this.stoppedAt) {
        this.dirty = false;
        for (;;) {
          const after = this.checkpoint;
          const page = await read(after);
          this.head = Math.max(this.head, page.head);
          const last = page.chunks.at(-1);
          const end = last ? last.firstPosition + last.count - 1 : after;
          const reachedHead = end >= page.head;
          const rebuilding = this.rebuilding(ref);
          this.apply(definition, page.chunks, end, reachedHead);
          this.notify();
          if (this.stoppedAt || reachedHead) break;
          // Yield between pages so queries get in; a version rebuilding beside an older one
          // also rests, so the sequencer it reads keeps serving appends and live readers.
          const rest = rebuilding ? REBUILD_REST_MS : 0;
          await new Promise((resolve) => setTimeout(resolve, rest));
        }
      }
      this.failure = undefined;
    } catch (e) {
      this.failure = e;
      this.notify();
      // Try again later rather than wedge: the sequencer may be restarting.
      await this.ctx.storage.setAlarm(Date.now() + 1000);
      this.meta('ref', JSON.stringify(ref));
    }
  }

  override async alarm(): Promise<void> {
    const ref = this.meta('ref');
    this.failure = undefined;
    if (ref) this.wake(JSON.parse(ref) as ProjectionRef);
  }

  /**
   * Folds one page, the stored chunks up to position `end`; rows, parked events and the
   * checkpoint are written in one transaction.
   */
  private apply(definition: AnyProjection, chunks: StoredChunk[], end: number, reachedHead: boolean): void {
    const registry = edgeConfig().registry;
    // Upcasting happens inside projectBatch's guard: an event that does not upcast is parked.
    // The keys pass and the fold both upcast: each event is upcast once per page.
    const options = registry ? { upcast: upcastOnce((e: EventEnvelope) => registry.upcast(e)) } : {};
    const fresh: EventEnvelope[] = [];
    for (const chunk of chunks) {
      for (const e of unpackChunk(chunk.stream, chunk)) {
        if ((e.position ?? 0) > this.checkpoint && projectionHandles(definition, e.type)) fresh.push(e);
      }
    }
    const sql = this.ctx.storage.sql;
    const { out, texts } = this.fold(definition, fresh, options);
    // A stop at position P leaves everything before P processed (folded, or not its type),
    // whether or not this page folded anything before it.
    const through = out.stoppedAt
      ? Math.max(out.stoppedAt.position - 1, this.checkpoint)
      : Math.max(end, this.checkpoint);
    const parkedAt = new Date().toISOString();
    try {
      this.ctx.storage.transactionSync(() => {
        this.rows.write(texts);
        for (const p of out.parked) {
          sql.exec(
            'INSERT OR IGNORE INTO parked (position, event_id, stream, type, error, parked_at) VALUES (?, ?, ?, ?, ?, ?)',
            p.position,
            p.eventId,
            p.stream,
            p.type,
            p.error,
            parkedAt,
          );
        }
        if (out.stoppedAt) this.meta('stopped', JSON.stringify(out.stoppedAt));
        this.meta('checkpoint', String(through));
        if (!out.stoppedAt && reachedHead) this.meta('ready', '1');
      });
    } catch (e) {
      this.rows.forget();
      throw e;
    }
    this.rows.remember(texts);
    this.processed += fresh.length;
    this.checkpoint = through;
    if (out.stoppedAt) this.stoppedAt = out.stoppedAt;
    if (!out.stoppedAt && reachedHead) this.ready = true;
  }

  /** Folds `events` into the stored rows; the changed states and the text each is stored as. */
  private fold(
    definition: AnyProjection,
    events: EventEnvelope[],
    options: ProjectBatchOptions<EventEnvelope>,
  ): { out: ProjectedBatch<unknown>; texts: Map<string, string | null> } {
    const keys = keysOfBatch(definition, events, options);
    return projectBatchAsJson(definition, events, this.rows.current(keys), options);
  }

  /** Resolves once the checkpoint reaches `minPosition`; Timeout (504) when it does not in time. */
  private async caughtUpTo(ref: ProjectionRef, wait: WaitFor): Promise<void> {
    this.definition(ref);
    const target = wait.minPosition;
    if (target === undefined || this.checkpoint >= target) {
      if (target === undefined) this.wake(ref);
      return;
    }
    this.wake(ref);
    const deadline = Date.now() + wait.timeoutMs;
    while (this.checkpoint < target) {
      if (this.stoppedAt) {
        throw error(
          'Internal',
          `projection ${ref.name} v${ref.version} stopped at position ${this.stoppedAt.position}`,
          {
            stoppedAt: this.stoppedAt,
          },
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw error(
          'Timeout',
          `projection ${ref.name} v${ref.version} reached position ${this.checkpoint}, not ${target}, within ${wait.timeoutMs} ms`,
          { checkpoint: this.checkpoint, minPosition: target, head: this.head },
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 250));
        this.waiters.add(done);
      });
      // Positions not yet committed when the catch-up last looked: look again.
      if (this.checkpoint < target && !this.running) this.wake(ref);
    }
  }

  /** A new version building beside an older one that answers queries meanwhile. */
  private rebuilding(ref: ProjectionRef): boolean {
    return !this.ready && projectionVersions(ref.name).some((p) => p.version < ref.version);
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private describe(ref: ProjectionRef): ProjectionStatus {
    const parked = this.ctx.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM parked').one().n;
    const status: ProjectionStatus = {
      name: ref.name,
      version: ref.version,
      checkpoint: this.checkpoint,
      head: this.head,
      lag: Math.max(0, this.head - this.checkpoint),
      state: this.stoppedAt ? 'stopped' : this.checkpoint >= this.head && this.ready ? 'live' : 'catching-up',
      ready: this.ready,
      parked,
      processed: this.processed,
    };
    if (this.stoppedAt) status.stoppedAt = this.stoppedAt;
    return status;
  }

  private definition(ref: ProjectionRef): AnyProjection {
    const definition = projectionDefinition(ref.name, ref.version);
    if (!definition) throw error('NotFound', `projection ${ref.name} v${ref.version} is not configured`);
    if (this.meta('ref') === undefined) this.meta('ref', JSON.stringify(ref));
    return definition;
  }

  private meta(key: string, value?: string): string | undefined {
    const sql = this.ctx.storage.sql;
    if (value !== undefined) {
      sql.exec(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
        key,
        value,
      );
      return value;
    }
    return sql.exec<{ value: string }>('SELECT value FROM meta WHERE key = ?', key).toArray()[0]?.value;
  }

  private async outcome<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
    try {
      return { ok: true, value: await fn() };
    } catch (e) {
      return { ok: false, error: toWireError(e) };
    }
  }

  private sequencer(store: string) {
    return this.env.SEQUENCERS.get(this.env.SEQUENCERS.idFromName(store)) as unknown as {
      readChunks(after: number, limit: number, maxChars: number): Promise<ChunkPage>;
      getHead(): Promise<number>;
    };
  }
}
