import { ExpectedVersion } from '@edgelog/core';

/**
 * The commits of one stream in a push run in order, and a later one may have been decided on
 * top of an earlier one: its expected version counts the earlier commit's events. Once a commit
 * of a stream did not land (conflict or rejected), a later commit of that stream that checks the
 * stream's state must not land either, even when its number happens to equal the stream's
 * version (another writer's events took the place of the ones it was decided on): that would
 * commit a decision made on a history the server never had.
 *
 * Such a commit is sent on with `afterFailedCommit`: the StreamDO still answers `duplicate` when
 * its events are stored already (idempotency comes first), and `conflict` otherwise, with the
 * stream's version and the events after the expected version it is sent with. That is the
 * smaller of its own and the chain's base (`conflictFrom`): its own counts the pending events of
 * the commits before it, which did not land, so the stream's events in their place are ones its
 * writer has not seen either. The client replays it on the history it has not seen.
 */
export function mustNotLandAfterFailure(expectedVersion: ExpectedVersion | undefined): boolean {
  return expectedVersion !== undefined && expectedVersion !== 'any';
}

/** Whether a commit's answer means it did not land, so later commits of its stream must not build on it. */
export const didNotLand = (status: string): boolean => status === 'conflict' || status === 'rejected';

/**
 * A stream's chain in a push once one of its commits did not land. `base`: the stream version
 * the writer had seen under its pending commits, i.e. the first failed commit's expected
 * version (`no_stream` = 0); undefined when that commit named none (`any`, `stream_exists`,
 * or none that parses).
 */
export interface FailedChain {
  base: number | undefined;
}

/** The chain that starts at the first failed commit, from that commit as sent (it may not parse). */
export function failedChain(raw: unknown): FailedChain {
  const sent =
    typeof raw === 'object' && raw !== null
      ? (raw as { expectedVersion?: unknown }).expectedVersion
      : undefined;
  const expected = ExpectedVersion.safeParse(sent);
  if (!expected.success) return { base: undefined };
  const v = expected.data;
  return { base: typeof v === 'number' ? v : v === 'no_stream' ? 0 : undefined };
}

/** The expected version a commit after a failed one is sent with: its conflict answers the events after it. */
export function conflictFrom(
  own: ExpectedVersion | undefined,
  chain: FailedChain,
): ExpectedVersion | undefined {
  return typeof own === 'number' && chain.base !== undefined ? Math.min(own, chain.base) : own;
}
