/**
 * The commits of one stream in a push run in order, and a later one may have been decided on
 * top of an earlier one: its expected version counts the earlier commit's events. Once a commit
 * of a stream did not land (conflict or rejected), a later commit of that stream that checks the
 * stream's state must not land either, even when its number happens to equal the stream's
 * version (another writer's events took the place of the ones it was decided on): that would
 * commit a decision made on a history the server never had.
 *
 * Such a commit is sent on with an expected version no stream reaches: the StreamDO still
 * answers `duplicate` when its events are stored already (idempotency comes first), and
 * `conflict` with the stream's version otherwise, so the client replays it after the earlier one.
 */
export const UNREACHABLE_VERSION = Number.MAX_SAFE_INTEGER;

/** The commit to send once an earlier commit of its stream in the same push did not land. */
export function afterFailedCommit(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const expected = (raw as { expectedVersion?: unknown }).expectedVersion;
  if (expected === undefined || expected === 'any') return raw;
  return { ...raw, expectedVersion: UNREACHABLE_VERSION };
}

/** Whether a commit's answer means it did not land, so later commits of its stream must not build on it. */
export const didNotLand = (status: string): boolean => status === 'conflict' || status === 'rejected';
