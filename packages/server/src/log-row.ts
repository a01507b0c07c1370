import { idempotencyConflict, type WireError } from '@edgelog/core';
import type { VersionedChunk } from './packed.ts';

/**
 * One StreamDO batch: committed whole or not at all. Idempotent: a repeated commit carries
 * the same event ids, which the sequencer finds in its id index and answers as a duplicate.
 * `commitId` names the attempt in the log (kept with its segments).
 */
export interface CommitRequest {
  commitId: string;
  stream: string;
  /** The batch's event ids, in order. */
  ids: string[];
  /** The batch's events, packed, at consecutive versions from `chunks[0].firstVersion`. */
  chunks: VersionedChunk[];
}

/**
 * Positions of a commit are consecutive: `firstPosition + i` for the i-th event. `duplicate`:
 * every id is in the log already, in this stream (the original answer). `stale`: the global
 * log holds a different last version for the stream than the StreamDO assumed (the StreamDO
 * missed a commit in a crash window); it must sync from the log and decide again.
 */
export type CommitOutcome =
  | { status: 'committed'; firstPosition: number; recordedAt: string }
  | { status: 'duplicate'; version: number; positions: number[] }
  | { status: 'stale'; logVersion: number }
  | { status: 'rejected'; error: WireError };

/** Where an event id is stored in the store's log. */
export interface IdLocation {
  id: string;
  stream: string;
  version: number;
  position: number;
}

/** Server-owned metadata key: who wrote the event (the token's `sub`, else its role). */
export const AUTHOR_KEY = '$author';

/** The answer to a commit some of whose ids the store holds already. */
export function answerTaken(
  request: Pick<CommitRequest, 'stream' | 'ids'>,
  taken: IdLocation[],
): Exclude<CommitOutcome, { status: 'committed' | 'stale' }> {
  const byId = new Map(taken.map((t) => [t.id, t]));
  if (taken.length === request.ids.length && taken.every((t) => t.stream === request.stream)) {
    return {
      status: 'duplicate',
      version: Math.max(...taken.map((t) => t.version)),
      positions: request.ids.map((id) => (byId.get(id) as IdLocation).position),
    };
  }
  const conflict = idempotencyConflict(
    request.stream,
    request.ids.filter((id) => byId.has(id)),
    request.ids.filter((id) => !byId.has(id)),
  );
  const elsewhere = taken.some((t) => t.stream !== request.stream);
  return {
    status: 'rejected',
    error: elsewhere
      ? { ...conflict.toWire(), message: `${conflict.message} (event ids are unique per store)` }
      : conflict.toWire(),
  };
}
