import type { EventEnvelope } from '@edgelog/core';
import { z } from 'zod';

/**
 * Events travel from the Worker through the StreamDO to the SequencerDO, and are stored by
 * both, as packed JSON text: one chunk is `[[id, type, schemaVersion, data, metadata], ...]`
 * for consecutive versions. The Worker packs them once, after validation; the objects store
 * and copy the text as it is, so the write path does no per-event work in a Durable Object.
 */
export interface PackedChunk {
  count: number;
  /** JSON text: an array of `[id, type, schemaVersion, data, metadata]`. */
  events: string;
}

/** A validated append, packed: the ids (for idempotency) and the events' text in chunks. */
export interface PackedEvents {
  ids: string[];
  chunks: PackedChunk[];
}

/** A chunk placed in a stream: its first event has version `firstVersion`. */
export interface VersionedChunk extends PackedChunk {
  firstVersion: number;
}

/** A committed chunk: positions are `firstPosition + i`, versions `firstVersion + i`. */
export interface LoggedChunk extends VersionedChunk {
  firstPosition: number;
  recordedAt: string;
}

/**
 * A chunk keeps at most this many UTF-16 code units of JSON: at most 1.8 MB of UTF-8, and a
 * Durable Object SQLite row holds at most 2 MB.
 */
export const CHUNK_CHARS = 600_000;

interface PackableEvent {
  id: string;
  type: string;
  schemaVersion: number;
  data: unknown;
  metadata: Record<string, unknown>;
}

/**
 * Packs validated events, stamping the server's `$author` into each event's metadata.
 * `sentBytes` is the size of the request they came in: when that is within a chunk, the whole
 * batch is packed by one native `JSON.stringify`, kept if it fits in one chunk.
 */
export function packEvents(
  events: readonly PackableEvent[],
  authorKey: string,
  author: string,
  sentBytes: number = Number.POSITIVE_INFINITY,
): PackedEvents {
  const authorOnly = { [authorKey]: author };
  const tuple = (e: PackableEvent) => [
    e.id,
    e.type,
    e.schemaVersion,
    e.data,
    hasKeys(e.metadata) ? { ...e.metadata, [authorKey]: author } : authorOnly,
  ];
  const ids = events.map((e) => e.id);
  if (sentBytes <= CHUNK_CHARS) {
    const text = JSON.stringify(events.map(tuple));
    if (text.length <= CHUNK_CHARS) return { ids, chunks: [{ count: events.length, events: text }] };
  }
  const chunks: PackedChunk[] = [];
  let parts: string[] = [];
  let bytes = 2;
  for (const e of events) {
    const part = JSON.stringify(tuple(e));
    if (parts.length > 0 && bytes + part.length > CHUNK_CHARS) {
      chunks.push({ count: parts.length, events: `[${parts.join(',')}]` });
      parts = [];
      bytes = 2;
    }
    parts.push(part);
    bytes += part.length + 1;
  }
  if (parts.length > 0) chunks.push({ count: parts.length, events: `[${parts.join(',')}]` });
  return { ids, chunks };
}

function hasKeys(o: Record<string, unknown>): boolean {
  for (const _ in o) return true;
  return false;
}

/** Places a packed append at `firstVersion` of its stream. */
export function versioned(chunks: readonly PackedChunk[], firstVersion: number): VersionedChunk[] {
  let version = firstVersion;
  return chunks.map((c) => {
    const out = { ...c, firstVersion: version };
    version += c.count;
    return out;
  });
}

type PackedTuple = [
  id: string,
  type: string,
  schemaVersion: number,
  data: unknown,
  metadata: Record<string, unknown>,
];

/**
 * A stored chunk's text, parsed and checked at the trust boundary: `count` tuples of
 * `[id, type, schemaVersion (integer >= 1), data, metadata (object)]`. Checked by hand: this
 * runs for every event every read path shows, and zod's tuple parse cost as much as the
 * JSON parse itself.
 */
function parseTuples(stream: string, chunk: PackedChunk): PackedTuple[] {
  const tuples: unknown = JSON.parse(chunk.events);
  if (!Array.isArray(tuples) || tuples.length !== chunk.count)
    throw new Error(`stored chunk of ${stream} holds a wrong count`);
  for (const t of tuples as unknown[]) {
    if (
      !Array.isArray(t) ||
      t.length !== 5 ||
      typeof t[0] !== 'string' ||
      typeof t[1] !== 'string' ||
      !Number.isInteger(t[2]) ||
      (t[2] as number) < 1 ||
      typeof t[4] !== 'object' ||
      t[4] === null ||
      Array.isArray(t[4])
    )
      throw new Error(`stored chunk of ${stream} holds a malformed event`);
  }
  return tuples as PackedTuple[];
}

/** A stored chunk read back: parsed at the trust boundary, then made into envelopes. */
export function unpackChunk(stream: string, chunk: LoggedChunk): EventEnvelope[] {
  return parseTuples(stream, chunk).map(([id, type, schemaVersion, data, metadata], i) => ({
    id,
    stream,
    type,
    schemaVersion,
    data,
    metadata,
    version: chunk.firstVersion + i,
    position: chunk.firstPosition + i,
    recordedAt: chunk.recordedAt,
  }));
}

/** The part of a chunk from version `from` on (a chunk read from its middle). */
export function sliceChunk(chunk: LoggedChunk, from: number): LoggedChunk {
  const skip = from - chunk.firstVersion;
  if (skip <= 0) return chunk;
  const tuples = (JSON.parse(chunk.events) as unknown[]).slice(skip);
  return {
    firstVersion: from,
    firstPosition: chunk.firstPosition + skip,
    recordedAt: chunk.recordedAt,
    count: tuples.length,
    events: JSON.stringify(tuples),
  };
}

/** The first `count` events of a chunk (a page that ends inside a chunk). */
export function cutChunk(chunk: LoggedChunk, count: number): LoggedChunk {
  if (count >= chunk.count) return chunk;
  const tuples = (JSON.parse(chunk.events) as unknown[]).slice(0, count);
  return { ...chunk, count: tuples.length, events: JSON.stringify(tuples) };
}

/** The columns a stored chunk has in both the global log's segments and a stream's batches. */
export const ChunkRow = z.object({
  first_version: z.number().int().min(1),
  count: z.number().int().min(1),
  first_position: z.number().int().min(1),
  recorded_at: z.string(),
  events: z.string(),
});
export type ChunkRow = z.infer<typeof ChunkRow>;

/** A stored chunk row as the chunk it holds. */
export const chunkOfRow = (row: ChunkRow): LoggedChunk => ({
  firstVersion: row.first_version,
  firstPosition: row.first_position,
  recordedAt: row.recorded_at,
  count: row.count,
  events: row.events,
});
