import type { EventEnvelope, ProjectionDefinition } from '@edgelog/core';
import { keysOfBatch, projectBatchAsJson, upcastOnce } from '@edgelog/core';
import type { IDBPObjectStore, IDBPTransaction, StoreNames } from 'idb';
import { unwrap } from 'idb';
import { type Checkpoint, eventsOf, type LogRecord, type LogSchema, type StoredEvent } from './db.ts';
import { toEnvelope } from './envelope.ts';

type Tx = IDBPTransaction<LogSchema, StoreNames<LogSchema>[], 'readwrite'>;
// biome-ignore lint/suspicious/noExplicitAny: definitions of any state type share one runner
type AnyProjection = ProjectionDefinition<any, any>;

export const projectionId = (d: { name: string; version: number }) => `${d.name}@${d.version}`;

type Rows = IDBPObjectStore<LogSchema, StoreNames<LogSchema>[], 'rows', 'readwrite'>;

/** Below this many keys a batch reads its rows one by one. */
const RANGE_READ_FROM = 64;

/**
 * Reads the stored rows of `keys`. IndexedDB costs per request, so a batch touching many
 * keys reads the key range they span in one `getAll` when that range is dense enough (at
 * most 4 rows per touched key); a sparse range falls back to one `get` per key.
 */
async function readRows(rows: Rows, p: string, keys: string[]): Promise<Map<string, unknown>> {
  const state = new Map<string, unknown>();
  if (keys.length >= RANGE_READ_FROM) {
    const sorted = [...keys].sort();
    const cap = keys.length * 4;
    const found = await rows.getAll(IDBKeyRange.bound([p, sorted[0]!], [p, sorted.at(-1)!]), cap);
    if (found.length < cap) {
      const wanted = new Set(keys);
      for (const row of found) if (wanted.has(row.k)) state.set(row.k, row.state);
      return state;
    }
  }
  const found = await Promise.all(keys.map((k) => rows.get([p, k])));
  keys.forEach((k, i) => {
    const row = found[i];
    if (row) state.set(k, row.state);
  });
  return state;
}

/**
 * The order a client projection folds the local log in, so that it ends with the rows the
 * edge has: confirmed events in server position order, then pending events in local order.
 * The local log's own order differs from it where a local event was appended before foreign
 * events the server committed first.
 */
export function canonicalOrder(events: readonly StoredEvent[]): StoredEvent[] {
  const confirmed = events.filter((e) => e.position !== undefined);
  const pending = events.filter((e) => e.position === undefined);
  confirmed.sort((a, b) => a.position! - b.position!);
  return [...confirmed, ...pending];
}

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

  /**
   * Folds `events` (new local appends, or events after every checkpoint) into every projection.
   * `after` is the log's tail before them: a projection whose checkpoint is behind it missed
   * records some other writer added (a tab running a build without this projection), and is
   * refolded from the whole log instead, in this transaction.
   */
  async apply(
    tx: Tx,
    events: readonly StoredEvent[],
    only = this.definitions,
    after?: number,
  ): Promise<void> {
    if (!this.active || events.length === 0) return;
    // Local positions identify events in checkpoints and parked records.
    const envelopes: EventEnvelope[] = events.map(toEnvelope);
    // A loop, not Math.max(...): a spread of a whole log's events overflows the stack.
    let lp = 0;
    for (const e of events) if (e.lp > lp) lp = e.lp;
    // Every projection's keys pass and fold share one upcast per event.
    const upcast = upcastOnce(this.upcast);
    const behind = (
      await Promise.all(only.map((d) => this.#applyOne(tx, d, envelopes, lp, upcast, after)))
    ).flatMap((missed, i) => (missed ? [only[i]!] : []));
    await this.rebuild(tx, behind);
  }

  /**
   * Folds pulled foreign events. They come after every confirmed event but before the local
   * events the pull has not settled, so where a foreign event lands in a stream or a row that
   * such a local event touched (`unsettled`: the outbox's records before the pull), the
   * incremental fold would have the wrong order there: that projection is rebuilt instead.
   */
  async applyPulled(
    tx: Tx,
    foreign: readonly StoredEvent[],
    unsettled: readonly LogRecord[],
    after?: number,
  ): Promise<void> {
    if (!this.active || foreign.length === 0) return;
    const local = unsettled.flatMap((r) => r.events);
    const localStreams = new Set(local.map((e) => e.stream));
    // A projection stopped (onError 'stop') at an unsettled local event: the pulled events go
    // before that event in the canonical order, so they are folded by a rebuild, which stops
    // at the same event again after them.
    // (Read only when local events are unsettled: a catch-up's pulls do not read twice.)
    const stoppedBefore = local.length === 0 ? new Set<AnyProjection>() : await this.#stoppedAt(tx, local);
    const interleaved = foreign.some((e) => localStreams.has(e.stream));
    const options = { upcast: upcastOnce(this.upcast) };
    // Only a pull that meets local events outside their streams compares keys.
    const compare = !interleaved && local.length > 0;
    const localEnvelopes = compare ? local.map(toEnvelope) : [];
    const foreignEnvelopes = compare ? foreign.map(toEnvelope) : [];
    const rebuild: AnyProjection[] = [];
    const apply: AnyProjection[] = [];
    for (const d of this.definitions) {
      if (stoppedBefore.has(d)) {
        rebuild.push(d);
        continue;
      }
      let clash = interleaved;
      if (compare) {
        const localKeys = new Set(keysOfBatch(d, localEnvelopes, options));
        clash = keysOfBatch(d, foreignEnvelopes, options).some((k) => localKeys.has(k));
      }
      (clash ? rebuild : apply).push(d);
    }
    await this.apply(tx, foreign, apply, after);
    await this.rebuild(tx, rebuild);
  }

  /** The projections stopped at one of these (unsettled local) events. */
  async #stoppedAt(tx: Tx, local: readonly StoredEvent[]): Promise<Set<AnyProjection>> {
    const ids = new Set(local.map((e) => e.id));
    const checkpoints = tx.objectStore('checkpoints');
    const cps = await Promise.all(this.definitions.map((d) => checkpoints.get(projectionId(d))));
    return new Set(this.definitions.filter((_, i) => ids.has(cps[i]?.stopped?.eventId ?? '')));
  }

  async #applyOne(
    tx: Tx,
    d: AnyProjection,
    all: EventEnvelope[],
    lp: number,
    upcast: (e: EventEnvelope) => EventEnvelope,
    after: number | undefined,
  ): Promise<boolean> {
    const p = projectionId(d);
    const rows = tx.objectStore('rows');
    const checkpoints = tx.objectStore('checkpoints');
    const options = { upcast };
    // The events come after the checkpoint (the caller's contract), so the checkpoint and the
    // touched rows are read in one round; the filter below only guards a redelivery.
    const keys = keysOfBatch(d, all, options);
    const [stored, state] = await Promise.all([checkpoints.get(p), readRows(rows, p, keys)]);
    const cp: Checkpoint = stored ?? { p, lp: 0, parked: [] };
    if (cp.stopped) return false;
    // Records were added after the checkpoint without this projection: refold (the caller).
    if (after !== undefined && cp.lp < after) return true;
    const events = all.filter((e) => (e.position ?? 0) > cp.lp);
    if (events.length === 0) return false;
    // The edge's rule and form: a state JSON cannot hold parks the event that made it (storing
    // it could fail the transaction, and with it every append of its group), and a row holds
    // what its JSON text reads back as (a `Date` is its ISO text), so one definition gives the
    // same rows on both sides.
    const { out, texts } = projectBatchAsJson(d, events, state, options);
    // Row writes go to the plain store, without a promise and listeners each (a catch-up
    // writes thousands): a failed one aborts the transaction, so the checkpoint's put below,
    // which runs after them, fails with it.
    const raw = unwrap(rows);
    for (const [k, text] of texts) {
      if (text === null) raw.delete([p, k]);
      else raw.put({ p, k, state: JSON.parse(text) });
    }
    for (const parked of out.parked) {
      cp.parked.push({ eventId: parked.eventId, lp: parked.position, message: parked.error });
    }
    if (out.stoppedAt) {
      const at = out.stoppedAt;
      cp.stopped = { eventId: at.eventId, lp: at.position, message: at.error };
    }
    cp.lp = Math.max(cp.lp, lp);
    await checkpoints.put(cp);
    return false;
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

  /**
   * Drops the rows of `only` (default every projection) and refolds the whole log in
   * canonical order: after events left the optimistic view, or arrived before it.
   */
  async rebuild(tx: Tx, only = this.definitions): Promise<void> {
    if (only.length === 0) return;
    const rows = tx.objectStore('rows');
    const checkpoints = tx.objectStore('checkpoints');
    const [records] = await Promise.all([
      tx.objectStore('log').getAll(),
      ...only.map(async (d) => {
        const p = projectionId(d);
        await rows.delete(IDBKeyRange.bound([p, ''], [p, '\uffff']));
        await checkpoints.put({ p, lp: 0, parked: [] });
      }),
    ]);
    const events = canonicalOrder(records.flatMap((r) => eventsOf(r)));
    await this.apply(tx, events, only);
    // The checkpoints stand at the log's tail, which removed events may have left above the
    // last event folded: the next write then comes right after them (see `apply`'s `after`).
    const tail = records.at(-1)?.to ?? 0;
    await Promise.all(
      only.map(async (d) => {
        const cp = await checkpoints.get(projectionId(d));
        if (cp && !cp.stopped && cp.lp < tail) await checkpoints.put({ ...cp, lp: tail });
      }),
    );
  }
}
