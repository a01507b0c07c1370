import { type EventEnvelope, type EventFilter, matchesFilter } from '@edgelog/core';
import { z } from 'zod';
import type { CommitRequest, LoggedEvent } from './log-row.ts';
import { insertRows } from './sql-batch.ts';

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

/** A segment keeps at most this much event JSON (a DO SQLite row holds at most 2 MB). */
const SEGMENT_BYTES = 1_000_000;

const SegmentRow = z.object({
  first_position: z.number().int().min(1),
  count: z.number().int().min(1),
  stream: z.string(),
  first_version: z.number().int().min(1),
  recorded_at: z.string(),
  events: z.string(),
});
type SegmentRow = z.infer<typeof SegmentRow>;

/** `[id, type, schemaVersion, data, metadata]` per event. */
const SegmentEvents = z.array(
  z.tuple([z.string(), z.string(), z.number().int().min(1), z.unknown(), z.record(z.string(), z.unknown())]),
);

const SEGMENT_COLUMNS = 'first_position, count, stream, first_version, recorded_at, events';

/**
 * The store's global log in the SequencerDO's SQLite. A commit is stored as one segment row
 * (or a few, when large) holding its events' JSON, plus one small row per event id for
 * per-store uniqueness: per-row write cost dominates, so the log pays it once per commit.
 * Positions inside a segment are consecutive: `first_position + i`.
 */
export class GlobalLog {
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
    sql.exec('CREATE TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY) WITHOUT ROWID');
    sql.exec(`CREATE TABLE IF NOT EXISTS commits (
      commit_id TEXT PRIMARY KEY,
      first_position INTEGER NOT NULL,
      count INTEGER NOT NULL,
      recorded_at TEXT NOT NULL
    ) WITHOUT ROWID`);
  }

  head(): number {
    const row = this.sql
      .exec<{ last: number }>(
        'SELECT first_position + count - 1 AS last FROM segments ORDER BY first_position DESC LIMIT 1',
      )
      .toArray()[0];
    return row?.last ?? 0;
  }

  commitOf(commitId: string): { firstPosition: number; recordedAt: string } | undefined {
    const row = this.sql
      .exec<{ first_position: number; recorded_at: string }>(
        'SELECT first_position, recorded_at FROM commits WHERE commit_id = ?',
        commitId,
      )
      .toArray()[0];
    return row && { firstPosition: row.first_position, recordedAt: row.recorded_at };
  }

  /** The stream's last version in the log (0 when it has none). */
  lastVersion(stream: string): number {
    const row = this.sql
      .exec<{ last: number }>(
        'SELECT first_version + count - 1 AS last FROM segments WHERE stream = ? ORDER BY first_version DESC LIMIT 1',
        stream,
      )
      .toArray()[0];
    return row?.last ?? 0;
  }

  /** Ids of the batch already in the store, in one indexed statement. */
  takenIds(ids: string[]): string[] {
    return this.sql
      .exec<{ id: string }>(
        'SELECT id FROM ids WHERE id IN (SELECT value FROM json_each(?))',
        JSON.stringify(ids),
      )
      .toArray()
      .map((r) => r.id);
  }

  /** Writes one commit; the caller runs it inside the group's transaction after its checks. */
  append(request: CommitRequest, firstPosition: number, recordedAt: string): void {
    let start = 0;
    while (start < request.events.length) {
      let bytes = 2;
      const parts: string[] = [];
      let end = start;
      while (end < request.events.length && (parts.length === 0 || bytes < SEGMENT_BYTES)) {
        const e = request.events[end] as CommitRequest['events'][number];
        // data and metadata are JSON text already: embed them, do not re-encode them.
        const part = `[${JSON.stringify(e.id)},${JSON.stringify(e.type)},${e.schemaVersion},${e.data},${e.metadata}]`;
        parts.push(part);
        bytes += part.length + 1;
        end++;
      }
      this.sql.exec(
        'INSERT INTO segments (first_position, count, stream, first_version, recorded_at, commit_id, events) VALUES (?, ?, ?, ?, ?, ?, ?)',
        firstPosition + start,
        end - start,
        request.stream,
        request.events[start]?.version ?? 1,
        recordedAt,
        request.commitId,
        `[${parts.join(',')}]`,
      );
      start = end;
    }
    insertRows(
      this.sql,
      'ids',
      ['id'],
      request.events.map((e) => [e.id]),
    );
    this.sql.exec(
      'INSERT INTO commits (commit_id, first_position, count, recorded_at) VALUES (?, ?, ?, ?)',
      request.commitId,
      firstPosition,
      request.events.length,
      recordedAt,
    );
  }

  /** Events after position `after`, in position order, within `scope`, at most `limit`. */
  scan(after: number, limit: number, scope: GlobalReadScope): EventEnvelope[] {
    const events: EventEnvelope[] = [];
    const first = this.sql
      .exec<{ p: number }>(
        'SELECT first_position AS p FROM segments WHERE first_position <= ? ORDER BY first_position DESC LIMIT 1',
        after + 1,
      )
      .toArray()[0];
    const rows = this.sql.exec(
      `SELECT ${SEGMENT_COLUMNS} FROM segments WHERE first_position >= ? ORDER BY first_position`,
      first?.p ?? 0,
    );
    for (const raw of rows) {
      const row = SegmentRow.parse(raw);
      if (!streamInScope(scope, row.stream)) continue;
      for (const e of unpack(row)) {
        if ((e.position ?? 0) <= after || !inScope(scope, e)) continue;
        events.push(e);
        if (events.length >= limit) return events;
      }
    }
    return events;
  }

  /** A stream's committed events after `afterVersion`, for a StreamDO catching up after a crash. */
  streamTail(stream: string, afterVersion: number, limit: number): LoggedEvent[] {
    const out: LoggedEvent[] = [];
    const rows = this.sql.exec(
      `SELECT ${SEGMENT_COLUMNS} FROM segments WHERE stream = ? AND first_version + count - 1 > ? ORDER BY first_version`,
      stream,
      afterVersion,
    );
    for (const raw of rows) {
      for (const e of unpack(SegmentRow.parse(raw))) {
        if (e.version <= afterVersion) continue;
        out.push({
          id: e.id,
          version: e.version,
          type: e.type,
          schemaVersion: e.schemaVersion,
          data: JSON.stringify(e.data),
          metadata: JSON.stringify(e.metadata),
          position: e.position ?? 0,
          recordedAt: e.recordedAt ?? '',
        });
        if (out.length >= limit) return out;
      }
    }
    return out;
  }
}

function unpack(row: SegmentRow): EventEnvelope[] {
  return SegmentEvents.parse(JSON.parse(row.events)).map(([id, type, schemaVersion, data, metadata], i) => ({
    id,
    stream: row.stream,
    type,
    schemaVersion,
    data,
    metadata,
    version: row.first_version + i,
    position: row.first_position + i,
    recordedAt: row.recorded_at,
  }));
}
