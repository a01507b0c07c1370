import type { EventEnvelope, WireError } from '@edgelog/core';
import { z } from 'zod';

/** An event as the StreamDO hands it to the sequencer: versioned, stamped, JSON kept as text. */
export interface SequencedEvent {
  id: string;
  version: number;
  type: string;
  schemaVersion: number;
  /** JSON text of `data`. */
  data: string;
  /** JSON text of `metadata`, server keys (`$author`) included. */
  metadata: string;
}

/** One StreamDO batch: committed whole or not at all, idempotent by `commitId`. */
export interface CommitRequest {
  commitId: string;
  stream: string;
  events: SequencedEvent[];
}

/**
 * Positions of a commit are consecutive: `firstPosition + i` for the i-th event. `stale`: the
 * global log holds a different last version for the stream than the StreamDO assumed (the
 * StreamDO missed a commit in a crash window); it must sync from the log and decide again.
 */
export type CommitOutcome =
  | { status: 'committed'; firstPosition: number; recordedAt: string; duplicate: boolean }
  | { status: 'stale'; logVersion: number }
  | { status: 'rejected'; error: WireError };

/** A committed event of one stream as the global log holds it, for StreamDO sync. */
export interface LoggedEvent extends SequencedEvent {
  position: number;
  recordedAt: string;
}

/** A row of either log read back from SQLite; parsed before it becomes an envelope. */
export const EventRow = z.object({
  id: z.string(),
  stream: z.string(),
  version: z.number().int().min(1),
  type: z.string(),
  schema_version: z.number().int().min(1),
  data: z.string(),
  metadata: z.string(),
  position: z.number().int().min(1),
  recorded_at: z.string(),
});
export type EventRow = z.infer<typeof EventRow>;

const MetadataJson = z.record(z.string(), z.unknown());

export function toEnvelope(raw: unknown): EventEnvelope {
  const row = EventRow.parse(raw);
  return {
    id: row.id,
    stream: row.stream,
    type: row.type,
    schemaVersion: row.schema_version,
    data: JSON.parse(row.data) as unknown,
    metadata: MetadataJson.parse(JSON.parse(row.metadata)),
    version: row.version,
    position: row.position,
    recordedAt: row.recorded_at,
  };
}

/** Server-owned metadata key: who wrote the event (the token's `sub`, else its role). */
export const AUTHOR_KEY = '$author';
