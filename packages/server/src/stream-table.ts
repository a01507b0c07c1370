import type { EventEnvelope } from '@edgelog/core';
import { ChunkRow, chunkOfRow, type LoggedChunk, unpackChunk } from './packed.ts';

const BATCH_COLUMNS = 'first_version, count, first_position, recorded_at, events';

const chunkOf = (raw: unknown): LoggedChunk => chunkOfRow(ChunkRow.parse(raw));

/**
 * A StreamDO's copy of its stream's slice of the global log: one row per committed chunk (the
 * packed text the sequencer stored), keyed by its first version. No id index: event ids are
 * indexed once per store, by the sequencer, which answers retries.
 */
export class StreamTable {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS batches (
      first_version INTEGER PRIMARY KEY,
      count INTEGER NOT NULL,
      first_position INTEGER NOT NULL,
      recorded_at TEXT NOT NULL,
      events TEXT NOT NULL
    )`);
    // A copy kept one row per event (before batches): the start-up sync refills from the log.
    sql.exec('DROP TABLE IF EXISTS events');
  }

  /** The stream's version: the number of its committed events. */
  version(): number {
    const row = this.sql
      .exec<{ v: number }>(
        'SELECT first_version + count - 1 AS v FROM batches ORDER BY first_version DESC LIMIT 1',
      )
      .toArray()[0];
    return row?.v ?? 0;
  }

  /** The position of the stream's last event (0 when it has none). */
  lastPosition(): number {
    const row = this.sql
      .exec<{ p: number }>(
        'SELECT first_position + count - 1 AS p FROM batches ORDER BY first_version DESC LIMIT 1',
      )
      .toArray()[0];
    return row?.p ?? 0;
  }

  insert(chunks: readonly LoggedChunk[]): void {
    for (const c of chunks)
      this.sql.exec(
        `INSERT INTO batches (${BATCH_COLUMNS}) VALUES (?, ?, ?, ?, ?)`,
        c.firstVersion,
        c.count,
        c.firstPosition,
        c.recordedAt,
        c.events,
      );
  }

  /** At most `limit` events from version `from` (inclusive), forwards or backwards. */
  read(stream: string, from: number, direction: 'forward' | 'backward', limit: number): EventEnvelope[] {
    const out: EventEnvelope[] = [];
    if (direction === 'backward') {
      const rows = this.sql.exec(
        `SELECT ${BATCH_COLUMNS} FROM batches WHERE first_version <= ? ORDER BY first_version DESC`,
        from,
      );
      for (const raw of rows) {
        const events = unpackChunk(stream, chunkOf(raw)).reverse();
        for (const e of events) {
          if (e.version > from) continue;
          out.push(e);
          if (out.length >= limit) return out;
        }
      }
      return out;
    }
    const start =
      this.sql
        .exec<{ v: number }>(
          'SELECT first_version AS v FROM batches WHERE first_version <= ? ORDER BY first_version DESC LIMIT 1',
          from,
        )
        .toArray()[0]?.v ?? from;
    const rows = this.sql.exec(
      `SELECT ${BATCH_COLUMNS} FROM batches WHERE first_version >= ? ORDER BY first_version`,
      start,
    );
    for (const raw of rows) {
      for (const e of unpackChunk(stream, chunkOf(raw))) {
        if (e.version < from) continue;
        out.push(e);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /** At most `limit` events whose position is after `position` (positions grow with versions). */
  afterPosition(stream: string, position: number, limit: number): EventEnvelope[] {
    const out: EventEnvelope[] = [];
    const rows = this.sql.exec(
      `SELECT ${BATCH_COLUMNS} FROM batches WHERE first_position + count - 1 > ? ORDER BY first_version`,
      position,
    );
    for (const raw of rows) {
      for (const e of unpackChunk(stream, chunkOf(raw))) {
        if ((e.position ?? 0) <= position) continue;
        out.push(e);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  // ---- bench-only standalone mode: the same appends without a sequencer ----------------

  /**
   * Without a sequencer there is no store-wide id index, so a standalone stream must keep its
   * own to answer retries: the bench's bypass pays for it as any store must.
   */
  standaloneIds(ids: readonly string[]): Map<string, number> {
    this.sql.exec(
      'CREATE TABLE IF NOT EXISTS standalone_ids (id TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID',
    );
    const found = this.sql.exec<{ id: string; version: number }>(
      'SELECT id, version FROM standalone_ids WHERE id IN (SELECT value FROM json_each(?))',
      JSON.stringify(ids),
    );
    return new Map([...found].map((r) => [r.id, r.version]));
  }

  /** The ids were just found absent; `OR IGNORE` spares SQLite a statement journal (see GlobalLog.tryAppend). */
  insertStandaloneIds(ids: readonly string[], firstVersion: number): void {
    this.sql.exec(
      'INSERT OR IGNORE INTO standalone_ids (id, version) SELECT value, ? + key FROM json_each(?)',
      firstVersion,
      JSON.stringify(ids),
    );
  }
}
