import type { ExpectedVersion } from '@edgelog/core';

/**
 * The commits of one stream in a push run in order, and a later one may have been decided on
 * top of an earlier one: its expected version counts the earlier commit's events. Once a commit
 * of a stream did not land (conflict or rejected), a later commit of that stream that checks the
 * stream's state must not land either, even when its number happens to equal the stream's
 * version (another writer's events took the place of the ones it was decided on): that would
 * commit a decision made on a history the server never had.
 *
 * Such a commit is sent on with `afterFailedCommit` and its own expected version: the StreamDO
 * still answers `duplicate` when its events are stored already (idempotency comes first), and
 * `conflict` otherwise, with the stream's version and the events after the version the commit
 * names, so the client replays it after the earlier one on the history it has not seen.
 */
export function mustNotLandAfterFailure(expectedVersion: ExpectedVersion | undefined): boolean {
  return expectedVersion !== undefined && expectedVersion !== 'any';
}

/** Whether a commit's answer means it did not land, so later commits of its stream must not build on it. */
export const didNotLand = (status: string): boolean => status === 'conflict' || status === 'rejected';
