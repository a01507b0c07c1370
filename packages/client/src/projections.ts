import type { EventEnvelope, ProjectionDefinition } from '@edgelog/core';
import type { IDBPTransaction, StoreNames } from 'idb';
import { type Checkpoint, eventsOf, type LogSchema, type StoredEvent } from './db.ts';
import { toEnvelope } from './envelope.ts';

type Tx = IDBPTransaction<LogSchema, StoreNames<LogSchema>[], 'readwrite'>;
// biome-ignore lint/suspicious/noExplicitAny: definitions of any state type share one runner
type AnyProjection = ProjectionDefinition<any, any>;

export const projectionId = (d: { name: string; version: number }) => `${d.name}@${d.version}`;

const keysOf = (d: AnyProjection, e: EventEnvelope): string[] => {
  if (d.types !== undefined && !d.types.includes(e.type)) return [];
  const k = d.key(e);
  if (k === null || k === undefined) return [];
  return typeof k === 'string' ? [k] : [...k];
};

/**
 * Runs client projections inside the transaction that writes the events, so a row and its
 * checkpoint move together. An event a projection throws on is parked on its checkpoint and
 * skipped; the other events and projections go on.
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
    const envelopes = events.map((e) => ({ lp: e.lp, event: this.upcast(toEnvelope(e)) }));
    await Promise.all(this.definitions.map((d) => this.#applyOne(tx, d, envelopes, events.at(-1)!.lp)));
  }

  async #applyOne(
    tx: Tx,
    d: AnyProjection,
    events: Array<{ lp: number; event: EventEnvelope }>,
    lp: number,
  ): Promise<void> {
    const p = projectionId(d);
    const rows = tx.objectStore('rows');
    const checkpoints = tx.objectStore('checkpoints');
    const keys = [...new Set(events.flatMap(({ event }) => keysOf(d, event)))];
    const [checkpoint, ...current] = await Promise.all([
      checkpoints.get(p),
      ...keys.map((k) => rows.get([p, k])),
    ]);
    const cp: Checkpoint = checkpoint ?? { p, lp: 0, parked: [] };
    const state = new Map<string, unknown>();
    keys.forEach((k, i) => {
      const row = current[i];
      if (row) state.set(k, row.state);
    });
    const changed = new Set<string>();
    for (const { lp: at, event: e } of events) {
      if (at <= cp.lp) continue;
      const touched = keysOf(d, e);
      try {
        const next = touched.map((k) => {
          const before = state.get(k);
          return d.evolve(before === undefined || before === null ? d.initialState(k) : before, e);
        });
        touched.forEach((k, i) => {
          state.set(k, next[i]);
          changed.add(k);
        });
      } catch (err) {
        cp.parked.push({ eventId: e.id, lp: at, message: err instanceof Error ? err.message : String(err) });
      }
    }
    const writes: Promise<unknown>[] = [];
    for (const k of changed) {
      const s = state.get(k);
      writes.push(s === null || s === undefined ? rows.delete([p, k]) : rows.put({ p, k, state: s }));
    }
    cp.lp = Math.max(cp.lp, lp);
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
        if (cp && cp.lp === tail) await checkpoints.put({ ...cp, lp: to });
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
      const events = records.flatMap((r) => eventsOf(r));
      await this.apply(tx, events);
      if (records.length < 64) break;
      lower = records.at(-1)!.to + 1;
    }
  }
}
