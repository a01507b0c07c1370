/**
 * Aggregate snapshots: disposable, never needed for correctness. A snapshot is keyed by
 * stream, stream version and the state schema's version; a changed state schema makes old
 * snapshots unusable, and the aggregate loads from its events again.
 */
export interface SnapshotPolicy {
  /** Version of the state's shape; bump it whenever the state type changes. */
  stateVersion: number;
  /** Take a snapshot every N events of the stream. */
  every?: number;
  /** Take a snapshot when a load had to replay more than M events. */
  afterReplayOf?: number;
}

export interface Snapshot<State = unknown> {
  stream: string;
  /** The stream version the state includes. */
  version: number;
  stateVersion: number;
  state: State;
}

export interface LoadFacts {
  /** The stream's version after the load. */
  version: number;
  /** Version of the newest stored snapshot (0 when none). */
  snapshotVersion: number;
  /** Events folded by the load after the snapshot. */
  replayed: number;
}

/** Whether to store a new snapshot after a load or an append. */
export function shouldSnapshot(policy: SnapshotPolicy, facts: LoadFacts): boolean {
  if (facts.version <= facts.snapshotVersion) return false;
  if (policy.afterReplayOf !== undefined && facts.replayed > policy.afterReplayOf) return true;
  if (policy.every !== undefined && policy.every > 0) {
    return Math.floor(facts.version / policy.every) > Math.floor(facts.snapshotVersion / policy.every);
  }
  return false;
}

/** Whether a stored snapshot may start a load under this policy. */
export function isUsableSnapshot(
  policy: SnapshotPolicy,
  snapshot: Snapshot | undefined,
): snapshot is Snapshot {
  return snapshot !== undefined && snapshot.stateVersion === policy.stateVersion;
}

/** The storage key of a stream's snapshot for a state version. */
export const snapshotKey = (stream: string, stateVersion: number): string => `${stream}@${stateVersion}`;
