import type { CommitInfo, LogRecord } from './db.ts';

/**
 * An expected version no stream reaches. A pending commit decided on top of an earlier pending
 * commit of its stream counts that commit's events in its expected version; once the earlier
 * one is refused for good or decided again (its events replaced, or none), the number means a
 * history that will never exist, and it could still match the server's version by coincidence
 * (another writer's events in the old ones' place). Such commits are sent with this version instead: the server answers `duplicate` if
 * they are stored already, else `conflict`, and the command is replayed on the real history
 * (a raw append that named a version is rejected).
 */
export const STALE_VERSION = Number.MAX_SAFE_INTEGER;

/** Marks the commits after `refused` (or decided again) in its stream stale; returns the records it changed. */
export function staleAfter(records: readonly LogRecord[], refused: CommitInfo): LogRecord[] {
  const changed: LogRecord[] = [];
  for (const rec of records) {
    let touched = false;
    for (const c of rec.commits ?? []) {
      const dependent = c.expectedVersion !== undefined && c.expectedVersion !== 'any';
      if (c.stream === refused.stream && c.seq > refused.seq && !c.acked && dependent) {
        if (c.expectedVersion !== undefined && c.expectedVersion !== STALE_VERSION)
          c.staleFrom = c.expectedVersion;
        c.expectedVersion = STALE_VERSION;
        touched = true;
      }
    }
    if (touched) changed.push(rec);
  }
  return changed;
}
