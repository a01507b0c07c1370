import { type EventEnvelope, type EventFilter, matchesFilter } from '@edgelog/core';
import { z } from 'zod';
import type { CommitRequest, IdLocation } from './log-row.ts';
import { ChunkRow, chunkOfRow, cutChunk, type LoggedChunk, sliceChunk, unpackChunk } from './packed.ts';

/** A stored chunk of the global log with its stream. */
export interface StoredChunk extends LoggedChunk {
  stream: string;
}

/** A page of the global log: the events found, and the last position examined for them. */
export interface ScanPage {
  events: EventEnvelope[];
  scannedTo: number;
}

/** What a global read may see: the query's filter and the token's stream prefixes. */
export interface GlobalReadScope {
  filter?: EventFilter;
  /** The token's stream prefixes; absent = every stream. */
  allowedPrefixes?: string[];
  /** Only these streams (WebSocket `streams` subscriptions). */
  streams?: string[];
}

export function inScope(scope: GlobalReadScope, event: { stream: string; type: string }): boolean {
  if (scope.allowedPrefixes && !scope.allowedPrefixes.some((p) => event.stream.startsWith(p))) return false;
  if (scope.streams && !scope.streams.includes(event.stream)) return false;
  return matchesFilter(scope.filter, event);
}

function streamInScope(scope: GlobalReadScope, stream: string): boolean {
  if (scope.allowedPrefixes && !scope.allowedPrefixes.some((p) => stream.startsWith(p))) return false;
  if (scope.streams && !scope.streams.includes(stream)) return false;
  const prefix = scope.filter?.streamPrefix;
  return prefix === undefined || stream.startsWith(prefix);
}

const SegmentRow = ChunkRow.extend({ stream: z.string() });

/** How many streams' last versions the log remembers at most. */
const MAX_REMEMBERED_STREAMS = 10_000;

const SEGMENT_COLUMNS = 'first_position, count, stream, first_version, recorded_at, events';

/**
 * The store's global log in the SequencerDO's SQLite. A commit is stored as the packed chunks
 * the StreamDO sent (one segment row each, usually one per commit), plus one `event_ids` row
 * per event: the store's id index, which makes ids unique per store and answers retries.
 * Per-row write cost dominates, so the log pays it once per commit and once per id.
 * Positions inside a segment are consecutive: `first_position + i`.
 */
export class GlobalLog {
  /** Each stream's last version, as `lastVersion` found it or `tryAppend` made it. */
  private readonly lastVersions = new Map<string, number>();

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS segments (
      first_position INTEGER PRIMARY KEY,
      count INTEGER NOT NULL,
      stream TEXT NOT NULL,
      first_version INTEGER NOT NULL,
      recorded_at TEXT NOT NULL,
      commit_id TEXT NOT NULL,
      events TEXT NOT NULL
    )`);
    sql.exec('CREATE UNIQUE INDEX IF NOT EXISTS segments_by_stream ON segments (stream, first_version)');
    const hadIndex = sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_ids'")
      .toArray().length;
    sql.exec(
      'CREATE TABLE IF NOT EXISTS event_ids (id TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID',
    );
    // Logs written before the id index kept positions: build it once from the segments.
    if (!hadIndex) this.rebuildIdIndex();
    sql.exec('DROP TABLE IF EXISTS ids');
    sql.exec('DROP TABLE IF EXISTS commits');
  }

  private rebuildIdIndex(): void {
    for (const raw of this.sql.exec(`SELECT ${SEGMENT_COLUMNS} FROM segments ORDER BY first_position`)) {
      const row = SegmentRow.parse(raw);
      const ids = unpackChunk(row.stream, chunkOfRow(row)).map((e) => e.id);
      this.insertIds(ids, row.first_position);
    }
  }

  head(): number {
    const row = this.sql
      .exec<{ last: number }>(
        'SELECT first_position + count - 1 AS last FROM segments ORDER BY first_position DESC LIMIT 1',
      )
      .toArray()[0];
    return row?.last ?? 0;
  }

  /**
   * The stream's last version in the log (0 when it has none). Remembered per stream after the
   * first query: only `tryAppend` changes it, and a transaction that fails after an append must
   * call `forgetVersions()`, since what the append remembered was rolled back with it.
   */
  lastVersion(stream: string): number {
    const known = this.lastVersions.get(stream);
    if (known !== undefined) return known;
    const row = this.sql
      .exec<{ last: number }>(
        'SELECT first_version + count - 1 AS last FROM segments WHERE stream = ? ORDER BY first_version DESC LIMIT 1',
        stream,
      )
      .toArray()[0];
    const last = row?.last ?? 0;
    this.remember(stream, last);
    return last;
  }

  /** Drops the remembered last versions (after a failed transaction). */
  forgetVersions(): void {
    this.lastVersions.clear();
  }

  private remember(stream: string, last: number): void {
    // Bounded: a store with very many streams queries again rather than grow without end.
    if (this.lastVersions.size >= MAX_REMEMBERED_STREAMS && !this.lastVersions.has(stream))
      this.lastVersions.clear();
    this.lastVersions.set(stream, last);
  }

  /** Where each of `ids` is stored, for those the store has (one indexed statement for the batch). */
  findIds(ids: readonly string[]): IdLocation[] {
    const found = this.sql
      .exec<{ id: string; position: number }>(
        'SELECT id, position FROM event_ids WHERE id IN (SELECT value FROM json_each(?))',
        JSON.stringify(ids),
      )
      .toArray();
    if (found.length === 0) return [];
    found.sort((a, b) => a.position - b.position);
    const out: IdLocation[] = [];
    let segment: { first: number; count: number; stream: string; version: number } | undefined;
    for (const { id, position } of found) {
      if (!segment || position >= segment.first + segment.count) {
        const row = this.sql
          .exec<{ first_position: number; count: number; stream: string; first_version: number }>(
            'SELECT first_position, count, stream, first_version FROM segments WHERE first_position <= ? ORDER BY first_position DESC LIMIT 1',
            position,
          )
          .one();
        segment = {
          first: row.first_position,
          count: row.count,
          stream: row.stream,
          version: row.first_version,
        };
      }
      out.push({ id, stream: segment.stream, version: segment.version + position - segment.first, position });
    }
    return out;
  }

  /**
   * Writes one commit, unless the store has one of its ids already: then it writes nothing and
   * answers false. The caller runs it inside the group's transaction, after its version check.
   *
   * The ids go in first, each only if new (`OR IGNORE`): the index's primary key is the
   * uniqueness check, so fresh ids (the common case) cost one insert each and no lookup.
   * `OR IGNORE` rather than `ON CONFLICT DO NOTHING`: with the latter, the primary key's implicit
   * NOT NULL could still abort the statement halfway, so SQLite kept a statement journal of
   * every page each multi-row insert touched again within the group's transaction; measured
   * with strace under 8 writers x 100 events, that journal spilled to a new temporary file
   * about 22 times a second and took 12% of the pages written. With no abort possible, none.
   * The statement's `rowsWritten` says how many went in.
   * When an id was taken, the rows this call added are deleted again by their ids (no other row
   * can have those ids) and the segment is never written. A savepoint around the attempt did
   * the same, but SQLite copies every page a savepoint first touches to its sub-journal: that
   * cost 9% of the workerd CPU per 100-event commit.
   */
  tryAppend(request: CommitRequest, firstPosition: number, recordedAt: string): boolean {
    const ids = JSON.stringify(request.ids);
    // The cursor counts the rows the statement inserted (as SQLite's changes()): taken ids add none.
    const added = this.sql.exec(
      'INSERT OR IGNORE INTO event_ids (id, position) SELECT value, ? + key FROM json_each(?)',
      firstPosition,
      ids,
    ).rowsWritten;
    if (added < request.ids.length) {
      if (added > 0)
        this.sql.exec(
          'DELETE FROM event_ids WHERE id IN (SELECT value FROM json_each(?)) AND position >= ?',
          ids,
          firstPosition,
        );
      return false;
    }
    let position = firstPosition;
    for (const chunk of request.chunks) {
      this.sql.exec(
        'INSERT INTO segments (first_position, count, stream, first_version, recorded_at, commit_id, events) VALUES (?, ?, ?, ?, ?, ?, ?)',
        position,
        chunk.count,
        request.stream,
        chunk.firstVersion,
        recordedAt,
        request.commitId,
        chunk.events,
      );
      position += chunk.count;
    }
    this.remember(request.stream, (request.chunks[0]?.firstVersion ?? 1) + request.ids.length - 1);
    return true;
  }

  /** One statement for the whole batch: `json_each` hands SQLite the ids without 100-value binds. */
  private insertIds(ids: readonly string[], firstPosition: number): void {
    this.sql.exec(
      'INSERT INTO event_ids (id, position) SELECT value, ? + key FROM json_each(?)',
      firstPosition,
      JSON.stringify(ids),
    );
  }

  /**
   * The segment rows in position order, from the one that holds position `after + 1` (to the
   * one that holds `until`, when given).
   */
  private segmentsFrom(after: number, until = Number.MAX_SAFE_INTEGER) {
    const first = this.sql
      .exec<{ p: number }>(
        'SELECT first_position AS p FROM segments WHERE first_position <= ? ORDER BY first_position DESC LIMIT 1',
        after + 1,
      )
      .toArray()[0];
    return this.sql.exec(
      `SELECT ${SEGMENT_COLUMNS} FROM segments WHERE first_position >= ? AND first_position <= ? ORDER BY first_position`,
      first?.p ?? 0,
      until,
    );
  }

  /**
   * Events after position `after`, in position order, within `scope`: at most `limit` of them,
   * from at most `budget` positions of the log (the caller makes it at least `limit`). A
   * sparse scope stops at the budget with what it found, so one read is bounded work;
   * `scannedTo` is the last position examined, where the reader goes on.
   */
  scan(after: number, limit: number, scope: GlobalReadScope, budget: number): ScanPage {
    const events: EventEnvelope[] = [];
    const until = after + budget;
    let scannedTo = after;
    for (const raw of this.segmentsFrom(after, until)) {
      const row = SegmentRow.parse(raw);
      const end = Math.min(row.first_position + row.count - 1, until);
      // A segment of a stream out of scope is passed over whole, without unpacking it.
      if (streamInScope(scope, row.stream))
        for (const e of unpackChunk(row.stream, chunkOfRow(row))) {
          const position = e.position ?? 0;
          if (position <= after) continue;
          if (position > until) break;
          if (!inScope(scope, e)) continue;
          events.push(e);
          if (events.length >= limit) return { events, scannedTo: position };
        }
      scannedTo = Math.max(scannedTo, end);
    }
    return { events, scannedTo };
  }

  /**
   * The stored chunks that hold the `limit` events after position `after` (whole segments; the
   * first may start before `after`, the last is cut at `limit`), fewer when the log ends or
   * the text reaches about `maxChars`. The text is handed on as stored, for a reader in the
   * store's own objects (the ProjectionDO) to unpack: no envelopes are built or copied here.
   */
  chunks(after: number, limit: number, maxChars: number): StoredChunk[] {
    const out: StoredChunk[] = [];
    const rows = this.segmentsFrom(after);
    let events = 0;
    let chars = 0;
    for (const raw of rows) {
      const row = SegmentRow.parse(raw);
      const chunk = chunkOfRow(row);
      const end = chunk.firstPosition + chunk.count - 1;
      if (end <= after) continue;
      const room = limit - events;
      const fresh = end - Math.max(after, chunk.firstPosition - 1);
      const kept = fresh > room ? cutChunk(chunk, chunk.count - (fresh - room)) : chunk;
      out.push({ stream: row.stream, ...kept });
      events += Math.min(fresh, room);
      chars += kept.events.length;
      if (events >= limit || chars >= maxChars) break;
    }
    return out;
  }

  /**
   * A stream's committed chunks after `afterVersion` (about `limit` events, whole segments), for
   * a StreamDO catching up with the log.
   */
  streamTail(stream: string, afterVersion: number, limit: number): LoggedChunk[] {
    const out: LoggedChunk[] = [];
    let events = 0;
    const rows = this.sql.exec(
      `SELECT ${SEGMENT_COLUMNS} FROM segments WHERE stream = ? AND first_version + count - 1 > ? ORDER BY first_version`,
      stream,
      afterVersion,
    );
    for (const raw of rows) {
      const chunk = sliceChunk(chunkOfRow(SegmentRow.parse(raw)), afterVersion + 1);
      out.push(chunk);
      events += chunk.count;
      if (events >= limit) break;
    }
    return out;
  }
}
