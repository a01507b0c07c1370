import type { EventEnvelope, ProjectionDefinition } from '@edgelog/core';
import { keysOfBatch, projectBatch } from '@edgelog/core';
import type { IDBPTransaction, StoreNames } from 'idb';
import type { Checkpoint, LogSchema, StoredEvent } from './db.ts';
import { toEnvelope } from './envelope.ts';

type Tx = IDBPTransaction<LogSchema, StoreNames<LogSchema>[], 'readwrite'>;
// biome-ignore lint/suspicious/noExplicitAny: definitions of any state type share one runner
type AnyProjection = ProjectionDefinition<any, any>;

export const projectionId = (d: { name: string; version: number }) => `${d.name}@${d.version}`;

/**
 * Runs client projections inside the transaction that writes the events, so a row and its
 * checkpoint move together. The fold is core's `projectBatch`, the one the edge runs too, so
 * one definition gives the same rows on both sides: an event the projection (or its upcast)
 * throws on is parked on the checkpoint and skipped, or, under the `'stop'` policy, halts
 * that projection before the event; the other events and projections go on.
 */
export class ProjectionRunner {
  constructor(
    readonly definitions: readonly AnyProjection[],
    private readonly upcast: (e: EventEnvelope) => EventEnvelope = (e) => e,
  ) {}

  get active(): boolean {
    return this.definitions.length > 0;
  }

  /** Folds `events` (in local order, all after every checkpoint) into every projection. */
  async apply(tx: Tx, events: readonly StoredEvent[]): Promise<void> {
    if (!this.active || events.length === 0) return;
    // Local positions order the fold (and the parked records), as global positions do at the edge.
    const envelopes: EventEnvelope[] = events.map(toEnvelope);
    await Promise.all(this.definitions.map((d) => this.#applyOne(tx, d, envelopes, events.at(-1)!.lp)));
  }

  async #applyOne(tx: Tx, d: AnyProjection, all: EventEnvelope[], lp: number): Promise<void> {
    const p = projectionId(d);
    const rows = tx.objectStore('rows');
    const checkpoints = tx.objectStore('checkpoints');
    const options = { upcast: this.upcast };
    // The events come after the checkpoint (the caller's contract), so the checkpoint and the
    // touched rows are read in one round; the filter below only guards a redelivery.
    const keys = keysOfBatch(d, all, options);
    const [stored, ...current] = await Promise.all([
      checkpoints.get(p),
      ...keys.map((k) => rows.get([p, k])),
    ]);
    const cp: Checkpoint = stored ?? { p, lp: 0, parked: [] };
    if (cp.stopped) return;
    const events = all.filter((e) => (e.position ?? 0) > cp.lp);
    if (events.length === 0) return;
    const state = new Map<string, unknown>();
    keys.forEach((k, i) => {
      const row = current[i];
      if (row) state.set(k, row.state);
    });
    const out = projectBatch(d, events, state, options);
    const writes: Promise<unknown>[] = [];
    for (const [k, s] of out.changed) {
      writes.push(s === null || s === undefined ? rows.delete([p, k]) : rows.put({ p, k, state: s }));
    }
    for (const parked of out.parked) {
      cp.parked.push({ eventId: parked.eventId, lp: parked.position, message: parked.error });
    }
    if (out.stoppedAt) {
      const at = out.stoppedAt;
      cp.stopped = { eventId: at.eventId, lp: at.position, message: at.error };
      cp.lp = Math.max(cp.lp, out.through);
    } else {
      cp.lp = Math.max(cp.lp, lp);
    }
    writes.push(checkpoints.put(cp));
    await Promise.all(writes);
  }

  /** An empty record went in at `to` after `tail`: checkpoints that were at the tail move on. */
  async advance(tx: Tx, tail: number, to: number): Promise<void> {
    if (!this.active) return;
    const checkpoints = tx.objectStore('checkpoints');
    await Promise.all(
      this.definitions.map(async (d) => {
        const cp = await checkpoints.get(projectionId(d));
        if (cp && cp.lp === tail && !cp.stopped) await checkpoints.put({ ...cp, lp: to });
      }),
    );
  }

  /** Drops every row and refolds the whole log: after events left the optimistic view. */
  async rebuild(tx: Tx): Promise<void> {
    if (!this.active) return;
    const rows = tx.objectStore('rows');
    const checkpoints = tx.objectStore('checkpoints');
    await Promise.all(
      this.definitions.map(async (d) => {
        const p = projectionId(d);
        await rows.delete(IDBKeyRange.bound([p, ''], [p, '\uffff']));
        await checkpoints.put({ p, lp: 0, parked: [] });
      }),
    );
    const log = tx.objectStore('log');
    let lower = 1;
    for (;;) {
      const records = await log.getAll(IDBKeyRange.lowerBound(lower), 64);
      const events = records.flatMap((r) => r.events);
      await this.apply(tx, events);
      if (records.length < 64) break;
      lower = records.at(-1)!.to + 1;
    }
  }
}
