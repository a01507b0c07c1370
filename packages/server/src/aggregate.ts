import type { EventEnvelope, Snapshot, WireError } from '@edgelog/core';
import { error, isUsableSnapshot, shouldSnapshot, toWireError } from '@edgelog/core';
import { z } from 'zod';
import { edgeConfig } from './config.ts';
import type { ReadOutcome } from './stream-do.ts';

/** A stream folded by a configured decider, as `GET .../aggregates/:decider` answers it. */
export interface AggregateView {
  stream: string;
  decider: string;
  /** The stream version the state includes (0: no stream yet, the initial state). */
  version: number;
  state: unknown;
  /** Version of the snapshot the load started from (0: none). */
  snapshotVersion: number;
  /** Events folded after the snapshot. */
  replayed: number;
}

export type AggregateOutcome = { ok: true; value: AggregateView } | { ok: false; error: WireError };

/** Events read per page while folding. */
const PAGE = 1000;

const SnapshotRow = z.object({ version: z.number().int().min(0), state: z.string() });

/**
 * A StreamDO's snapshots: one row per (decider, state version), holding the newest folded
 * state and its stream version. The StreamDO is the stream, so the key is (stream, version,
 * state version) as core's policy says. A changed state schema (a new `stateVersion`) never
 * reads the old rows; they are disposable and never needed for correctness.
 */
export class SnapshotStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS snapshots (
      decider TEXT NOT NULL, state_version INTEGER NOT NULL, version INTEGER NOT NULL,
      state TEXT NOT NULL, PRIMARY KEY (decider, state_version))`);
  }

  get(decider: string, stream: string, stateVersion: number): Snapshot | undefined {
    const raw = this.sql
      .exec(
        'SELECT version, state FROM snapshots WHERE decider = ? AND state_version = ?',
        decider,
        stateVersion,
      )
      .toArray()[0];
    if (!raw) return undefined;
    const row = SnapshotRow.parse(raw);
    return { stream, version: row.version, stateVersion, state: JSON.parse(row.state) as unknown };
  }

  put(decider: string, snapshot: Snapshot): void {
    this.sql.exec(
      `INSERT INTO snapshots (decider, state_version, version, state) VALUES (?, ?, ?, ?)
       ON CONFLICT(decider, state_version) DO UPDATE SET version = excluded.version, state = excluded.state
       WHERE excluded.version > snapshots.version`,
      decider,
      snapshot.stateVersion,
      snapshot.version,
      JSON.stringify(snapshot.state),
    );
  }
}

/**
 * Folds a stream with the decider configured under `name` (`configureEdge({ deciders })`),
 * from its usable snapshot when the decider has a snapshot policy, reading the stream in
 * pages through `read` (the StreamDO's own read, so it sees every acknowledged event).
 * Events are upcast first; one that does not upcast fails the load (a decider must not fold
 * a shape it does not know). A new snapshot is stored when the policy asks for one.
 */
export async function loadAggregate(
  sql: SqlStorage,
  name: string,
  stream: string,
  read: (from: number, limit: number) => Promise<ReadOutcome>,
): Promise<AggregateOutcome> {
  try {
    const config = edgeConfig();
    const decider = config.deciders?.[name];
    if (!decider) throw error('NotFound', `no decider named '${name}' is configured`);
    const policy = config.snapshots?.[name];
    const snapshots = policy ? new SnapshotStore(sql) : undefined;
    const stored = policy ? snapshots?.get(name, stream, policy.stateVersion) : undefined;
    const snapshot = policy && isUsableSnapshot(policy, stored) ? stored : undefined;
    let state: unknown = snapshot ? snapshot.state : decider.initialState();
    let version = snapshot?.version ?? 0;
    let replayed = 0;
    for (;;) {
      const outcome = await read(version + 1, PAGE);
      if (!outcome.ok) {
        if (outcome.error.code === 'StreamNotFound') break;
        return outcome;
      }
      for (const event of outcome.page.events as EventEnvelope[]) {
        let current = event;
        try {
          current = config.registry ? config.registry.upcast(event) : event;
        } catch (e) {
          throw error(
            'Internal',
            `event ${event.id} (version ${event.version} of ${stream}) does not read as its current shape: ${e instanceof Error ? e.message : String(e)}`,
          );
        }
        state = decider.evolve(state, current);
        version = event.version;
        replayed++;
      }
      if (outcome.page.events.length < PAGE || version >= outcome.page.version) break;
    }
    const snapshotVersion = snapshot?.version ?? 0;
    if (policy && snapshots && shouldSnapshot(policy, { version, snapshotVersion, replayed })) {
      snapshots.put(name, { stream, version, stateVersion: policy.stateVersion, state });
    }
    return { ok: true, value: { stream, decider: name, version, state, snapshotVersion, replayed } };
  } catch (e) {
    return { ok: false, error: toWireError(e) };
  }
}
