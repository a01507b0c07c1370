import type { EventEnvelope, WireError } from '@edgelog/core';
import type { IDBPTransaction, StoreNames } from 'idb';
import { STALE_VERSION, staleAfter } from './commit-chain.ts';
import type { CommitInfo, LogRecord, LogSchema, Rejection, StoredEvent } from './db.ts';
import { decodeRecord, finalize, withUnacked } from './db.ts';
import { toEnvelope } from './envelope.ts';
import { streamRecords, tailKey } from './log-reads.ts';
import type { ProjectionRunner } from './projections.ts';
import type { Withdrawal } from './status.ts';
import { pendingOrder, type ReplayDecider, renumber, replayCommand } from './sync-plan.ts';

export type Tx = IDBPTransaction<LogSchema, StoreNames<LogSchema>[], 'readwrite'>;

export type Redecided =
  | { kind: 'replayed'; commitId: string | undefined }
  | { kind: 'rejected'; rejection: Rejection }
  | { kind: 'undecidable'; error: WireError };

/** The records with commits the server has not acknowledged (the outbox), decoded. */
export async function pendingRecords(tx: Tx): Promise<LogRecord[]> {
  return (await tx.objectStore('log').index('pending').getAll()).map(decodeRecord);
}

/** The stream version a commit named (`no_stream` is 0); undefined for `any` and `stream_exists`. */
function namedVersion(expected: CommitInfo['expectedVersion']): number | undefined {
  if (expected === 'no_stream') return 0;
  return typeof expected === 'number' ? expected : undefined;
}

/** The withdrawal notices of a commit's events taken out of the log. */
function withdrawals(
  events: readonly StoredEvent[],
  commit: CommitInfo,
  reason: Withdrawal['reason'],
): Withdrawal[] {
  return events.map((e) => ({
    id: e.id,
    stream: e.stream,
    type: e.type,
    position: e.lp,
    reason,
    commitId: commit.commitId,
  }));
}

/** Takes a commit and its events out of its record (in memory); returns the events. */
export function removeCommit(rec: LogRecord, commit: CommitInfo): StoredEvent[] {
  const ids = new Set(commit.ids);
  const removed = rec.events.filter((e) => ids.has(e.id));
  rec.events = rec.events.filter((e) => !ids.has(e.id));
  rec.commits = (rec.commits ?? []).filter((c) => c !== commit);
  withUnacked(rec);
  return removed;
}

/** What deciding commits again needs: the deciders, and how new events are made. */
export interface RebaserDeps {
  projections: ProjectionRunner;
  deciders: Readonly<Record<string, ReplayDecider>>;
  /** Reads stored events as their current shape before deciders see them. */
  upcast?: (e: EventEnvelope) => EventEnvelope;
  /** Validates a replayed event; returns its parsed data and schema version. */
  validate?: (e: { type: string; data: unknown }) => { data: unknown; schemaVersion: number };
  newId: () => string;
  now: () => string;
}

/**
 * Pending commits decided again, or refused, inside the sync store's transactions: a command
 * replayed on the stream as it now is (new events replace the old ones), a refusal kept, the
 * later commits of the stream marked to be decided again too (commit-chain.ts), and the
 * stream's pending events renumbered after its confirmed ones. Every event taken out of the
 * log is added to the caller's `withdrawn`, told once the transaction has committed.
 */
export class Rebaser {
  constructor(private readonly deps: RebaserDeps) {}

  /** Removes a commit's events and keeps the refusal; the caller renumbers and rebuilds. */
  async reject(
    tx: Tx,
    rec: LogRecord,
    commit: CommitInfo,
    error: WireError,
    withdrawn: Withdrawal[],
  ): Promise<Rejection> {
    const events = removeCommit(rec, commit);
    withdrawn.push(...withdrawals(events, commit, 'rejected'));
    const rejection: Rejection = {
      commitId: commit.commitId,
      stream: commit.stream,
      error,
      events,
      at: this.deps.now(),
    };
    if (commit.command) rejection.command = commit.command;
    await Promise.all([
      tx.objectStore('log').put(finalize(rec)),
      tx.objectStore('rejections').put(rejection),
    ]);
    // Later commits of the stream decided on top of this one must be replayed: commit-chain.ts.
    const stale = staleAfter(await pendingRecords(tx), commit);
    await Promise.all(stale.map((r) => tx.objectStore('log').put(finalize(r))));
    return rejection;
  }

  /** A pending commit's stream as it now comes after: confirmed events, then the pending commits before it. */
  async prior(
    tx: Tx,
    records: readonly LogRecord[],
    commit: CommitInfo,
  ): Promise<{ confirmed: StoredEvent[]; earlier: StoredEvent[] }> {
    const stored = (await streamRecords(tx.objectStore('log'), commit.stream)).flatMap((r) => r.events);
    const ofStream = stored.filter((e) => e.stream === commit.stream);
    const confirmed = ofStream.filter((e) => e.position !== undefined).sort((a, b) => a.version - b.version);
    const order = pendingOrder(records.flatMap((r) => r.commits ?? []));
    const mine = order.get(commit.ids[0]!) ?? 0;
    const earlier = ofStream
      .filter((e) => e.position === undefined && (order.get(e.id) ?? Number.MAX_SAFE_INTEGER) < mine)
      .sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    return { confirmed, earlier };
  }

  /**
   * Decides a pending commit's command again after `confirmed` and `earlier` (inside `tx`):
   * new events, in a new record at the tail, replace the old ones; a refusal, or a raw append
   * that named a version, is rejected. The caller renumbers the stream and rebuilds projections.
   */
  async redecide(
    tx: Tx,
    rec: LogRecord,
    commit: CommitInfo,
    confirmed: readonly StoredEvent[],
    earlier: readonly StoredEvent[],
    actual: number,
    withdrawn: Withdrawal[],
  ): Promise<Redecided> {
    if (!commit.command) {
      const stale = commit.expectedVersion === STALE_VERSION;
      const expected = (stale ? commit.staleFrom : commit.expectedVersion) ?? 'any';
      const why = stale
        ? ', counting an earlier pending append to this stream that was refused or decided again'
        : '';
      const error: WireError = {
        code: 'WrongExpectedVersion',
        message: `stream '${commit.stream}': expected version ${String(expected)}${why}, actual ${actual}`,
        details: { stream: commit.stream, expected, actual },
      };
      return { kind: 'rejected', rejection: await this.reject(tx, rec, commit, error, withdrawn) };
    }
    const upcast = this.deps.upcast ?? ((e: EventEnvelope) => e);
    const prior = [...confirmed, ...earlier].map((e) => upcast(toEnvelope(e)));
    const outcome = replayCommand(
      this.deps.deciders[commit.command.decider],
      commit.command.decider,
      commit.command.command,
      prior,
    );
    if (outcome.kind === 'undecidable') return outcome;
    if (outcome.kind !== 'events') {
      return { kind: 'rejected', rejection: await this.reject(tx, rec, commit, outcome.error, withdrawn) };
    }
    let newEvents: StoredEvent[];
    try {
      newEvents = outcome.events.map((e, i) => {
        const valid = this.deps.validate?.(e);
        return {
          id: this.deps.newId(),
          stream: commit.stream,
          type: e.type,
          schemaVersion: valid?.schemaVersion ?? 1,
          data: valid ? valid.data : e.data,
          metadata: e.metadata ?? {},
          version: outcome.base + i + 1,
          lp: 0,
          recordedAt: this.deps.now(),
        };
      });
    } catch (e) {
      const error: WireError = { code: 'Validation', message: e instanceof Error ? e.message : String(e) };
      return { kind: 'rejected', rejection: await this.reject(tx, rec, commit, error, withdrawn) };
    }
    withdrawn.push(...withdrawals(removeCommit(rec, commit), commit, 'replayed'));
    const log = tx.objectStore('log');
    const writes: Promise<unknown>[] = [log.put(finalize(rec))];
    let replacedBy: string | undefined;
    if (newEvents.length > 0) {
      const tail = await tailKey(log);
      newEvents.forEach((e, i) => {
        e.lp = tail + i + 1;
      });
      const to = tail + newEvents.length;
      replacedBy = this.deps.newId();
      const base = outcome.base;
      const replacement: CommitInfo = {
        commitId: replacedBy,
        stream: commit.stream,
        expectedVersion: base === 0 ? 'no_stream' : base,
        ids: newEvents.map((e) => e.id),
        command: commit.command,
        seq: commit.seq,
      };
      writes.push(
        log.add(
          finalize({ from: tail + 1, to, events: newEvents, li: to, commits: [replacement], heads: [] }),
        ),
      );
    }
    await Promise.all(writes);
    // Later commits of the stream were decided on top of the old events: decided again too,
    // or a version that matches by coincidence would commit them on a history they never saw.
    const stale = staleAfter(await pendingRecords(tx), commit);
    await Promise.all(stale.map((r) => log.put(finalize(r))));
    return { kind: 'replayed', commitId: replacedBy };
  }

  /**
   * Rebases the pending commits of `names` that pulled events have made certain to conflict:
   * a commit that named version E (`no_stream` is 0) can never commit once the stream's
   * confirmed version is past E, so its command is decided again on the stream as it now is
   * (a raw append is rejected), in outbox order, before anything is published. Commits still
   * at or ahead of the confirmed version are left to the server (the original may have
   * committed there with its answer lost). Needs the stream's confirmed events gap-free
   * (an acknowledged commit ahead of the pull leaves a gap): otherwise the push's conflict
   * answer replays it after the pull has caught up.
   */
  async rebase(
    tx: Tx,
    pulled: ReadonlyMap<string, number>,
    withdrawn: Withdrawal[],
  ): Promise<{ rejected: Rejection[]; changed: boolean }> {
    const rejected: Rejection[] = [];
    let changed = false;
    const touched = new Set<string>();
    if (pulled.size === 0) return { rejected, changed };
    let records = await pendingRecords(tx);
    for (const [name, highest] of pulled) {
      for (;;) {
        const open = records
          .flatMap((rec) => (rec.commits ?? []).map((commit) => ({ rec, commit })))
          .filter(({ commit }) => {
            const named =
              commit.stream === name && !commit.acked ? namedVersion(commit.expectedVersion) : undefined;
            // A stale commit was decided on top of one refused for good (commit-chain.ts): it
            // can never commit as it is, so it is decided again here too.
            return named !== undefined && (named < highest || commit.expectedVersion === STALE_VERSION);
          })
          .sort((a, b) => a.commit.seq - b.commit.seq);
        if (open.length === 0) break;
        const first = open[0]!;
        const { confirmed, earlier } = await this.prior(tx, records, first.commit);
        if (!confirmed.every((e, i) => e.version === i + 1)) break;
        const version = confirmed.length;
        const stale = first.commit.expectedVersion === STALE_VERSION;
        if (!stale && namedVersion(first.commit.expectedVersion)! >= version) break;
        const result = await this.redecide(
          tx,
          first.rec,
          first.commit,
          confirmed,
          earlier,
          version,
          withdrawn,
        );
        // Left to a worker that has the decider (its push is answered conflict until then).
        if (result.kind === 'undecidable') break;
        if (result.kind === 'rejected') rejected.push(result.rejection);
        changed = true;
        touched.add(name);
        records = await pendingRecords(tx);
      }
    }
    if (touched.size > 0) await this.renumber(tx, touched, true);
    return { rejected, changed };
  }

  /**
   * Renumbers the pending events of `names` after their confirmed events, in outbox order.
   * Stream versions may change here without a record added (`grew`): then an empty record is
   * added at the tail, so that appends deciding from cached versions collide on its `from`
   * (see LogRecord.from) instead of using versions that moved under them.
   */
  async renumber(tx: Tx, names: ReadonlySet<string>, grew: boolean): Promise<void> {
    if (names.size === 0) return;
    const log = tx.objectStore('log');
    if (!grew) {
      const tail = await tailKey(log);
      await log.add(finalize({ from: tail + 1, to: tail + 1, events: [], heads: [] }));
      await this.deps.projections.advance(tx, tail, tail + 1);
    }
    const order = pendingOrder((await pendingRecords(tx)).flatMap((r) => r.commits ?? []));
    for (const name of names) {
      const records = await streamRecords(log, name);
      const events = records.flatMap((r) => r.events).filter((e) => e.stream === name);
      const versions = renumber(events, order);
      const writes: Promise<unknown>[] = [];
      for (const r of records) {
        let changed = false;
        for (const e of r.events) {
          const v = versions.get(e.id);
          if (e.stream === name && v !== undefined && v !== e.version) {
            e.version = v;
            changed = true;
          }
        }
        if (changed) writes.push(log.put(finalize(r)));
      }
      await Promise.all(writes);
    }
  }
}
