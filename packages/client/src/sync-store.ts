import type { EventEnvelope, WireError } from '@edgelog/core';
import { randomId } from '@edgelog/core';
import type { IDBPTransaction, StoreNames } from 'idb';
import { STALE_VERSION, staleAfter } from './commit-chain.ts';
import type {
  CommitInfo,
  Durability,
  LogDb,
  LogRecord,
  LogSchema,
  Rejection,
  StoredEvent,
  SyncMeta,
} from './db.ts';
import { abortOnThrow, decodeRecord, finalize, withUnacked } from './db.ts';
import { toEnvelope } from './envelope.ts';
import { streamRecords, tailKey, writeScope } from './local-log.ts';
import type { ProjectionRunner } from './projections.ts';
import type { Withdrawal } from './status.ts';
import {
  type Ack,
  type OutboxCommit,
  type PulledPage,
  pageTail,
  pendingOrder,
  type ReplayDecider,
  renumber,
  replayCommand,
} from './sync-plan.ts';
import type { WireEvent } from './wire.ts';

type Tx = IDBPTransaction<LogSchema, StoreNames<LogSchema>[], 'readwrite'>;

export interface SyncStoreDeps {
  projections: ProjectionRunner;
  deciders: Readonly<Record<string, ReplayDecider>>;
  /** Reads stored events as their current shape before deciders see them. */
  upcast?: (e: EventEnvelope) => EventEnvelope;
  /** Validates a replayed event; returns its parsed data and schema version. */
  validate?: (e: { type: string; data: unknown }) => { data: unknown; schemaVersion: number };
  newId?: () => string;
  now?: () => string;
  /** Called after every committed write with the new tail position. */
  onWrite: (tail: number) => void;
  /** Called after a transaction that took pending events out of the log committed. */
  onWithdrawn?: (withdrawn: Withdrawal[]) => void;
  /** The durability hint of its write transactions (see `Durability`). */
  durability?: Durability;
}

export type ReplayResult =
  | { kind: 'replayed'; commitId: string | undefined }
  | { kind: 'rejected'; rejection: Rejection }
  | { kind: 'stale' }
  | { kind: 'gone' }
  /** This worker has not the command's decider: the commit stays pending as it is. */
  | { kind: 'undecidable'; error: WireError };

/** What applying a pulled page did. */
export interface PullApplied {
  /** The last server position applied. */
  reached: number;
  /** Pending commits the page made certain to conflict and that could not be decided again. */
  rejected: Rejection[];
}

type Redecided =
  | { kind: 'replayed'; commitId: string | undefined }
  | { kind: 'rejected'; rejection: Rejection }
  | { kind: 'undecidable'; error: WireError };

const emptyMeta = (): SyncMeta => ({ key: 'sync', pulled: 0, head: 0 });

async function pendingRecords(tx: Tx): Promise<LogRecord[]> {
  return (await tx.objectStore('log').index('pending').getAll()).map(decodeRecord);
}

function findCommit(
  records: readonly LogRecord[],
  commitId: string,
): { rec: LogRecord; commit: CommitInfo } | undefined {
  for (const rec of records) {
    const commit = rec.commits?.find((c) => c.commitId === commitId);
    if (commit) return { rec, commit };
  }
  return undefined;
}

/** Drops commits the pull has covered; a record with none left leaves the outbox. */
function settle(rec: LogRecord, pulled: number): void {
  if (!rec.commits) return;
  const byId = new Map(rec.events.map((e) => [e.id, e]));
  rec.commits = rec.commits.filter(
    (c) =>
      !c.ids.every((id) => {
        const p = byId.get(id)?.position;
        return p !== undefined && p <= pulled;
      }),
  );
  withUnacked(rec);
}

/** The stream version a commit named (`no_stream` is 0); undefined for `any` and `stream_exists`. */
function namedVersion(expected: CommitInfo['expectedVersion']): number | undefined {
  if (expected === 'no_stream') return 0;
  return typeof expected === 'number' ? expected : undefined;
}

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

function removeCommit(rec: LogRecord, commit: CommitInfo): StoredEvent[] {
  const ids = new Set(commit.ids);
  const removed = rec.events.filter((e) => ids.has(e.id));
  rec.events = rec.events.filter((e) => !ids.has(e.id));
  rec.commits = (rec.commits ?? []).filter((c) => c !== commit);
  withUnacked(rec);
  return removed;
}

/**
 * The sync side of the local log: the outbox, acknowledgements, pulled pages, rejections and
 * command replay, each in one IndexedDB transaction.
 */
export class SyncStore {
  readonly #newId: () => string;
  readonly #now: () => string;

  constructor(
    readonly db: LogDb,
    private readonly deps: SyncStoreDeps,
  ) {
    this.#newId = deps.newId ?? randomId;
    this.#now = deps.now ?? (() => new Date().toISOString());
  }

  /** Tells of the pending events a committed transaction took out of the log. */
  #withdrew(withdrawn: Withdrawal[]): void {
    if (withdrawn.length > 0) this.deps.onWithdrawn?.(withdrawn);
  }

  #tx(): Tx {
    const scope = [...writeScope(this.deps.projections), 'meta', 'rejections'] as StoreNames<LogSchema>[];
    return this.db.transaction(scope, 'readwrite', { durability: this.deps.durability ?? 'default' });
  }

  async meta(): Promise<SyncMeta> {
    return (await this.db.get('meta', 'sync')) ?? emptyMeta();
  }

  /** Unacknowledged commits in outbox order. */
  async outbox(): Promise<OutboxCommit[]> {
    const records = (await this.db.getAllFromIndex('log', 'pending')).map(decodeRecord);
    const out: OutboxCommit[] = [];
    for (const rec of records) {
      const byId = new Map(rec.events.map((e) => [e.id, e]));
      for (const commit of rec.commits ?? []) {
        if (commit.acked) continue;
        out.push({ key: rec.to, commit, events: commit.ids.map((id) => byId.get(id)!).filter(Boolean) });
      }
    }
    return out.sort((a, b) => a.commit.seq - b.commit.seq);
  }

  /** Commits the server has not acknowledged: counted over an index, no records read. */
  async pendingCount(): Promise<number> {
    // The index keys records by their number of open commits n: the sum of n is the sum over
    // k >= 1 of the records with n >= k (counts go eight at a time; most records have n = 1).
    const index = this.db.transaction('log', 'readonly').store.index('unacked');
    let total = 0;
    for (let k = 1; ; k += 8) {
      const counts = await Promise.all(
        Array.from({ length: 8 }, (_, i) => index.count(IDBKeyRange.lowerBound(k + i))),
      );
      for (const c of counts) total += c;
      if (counts[7] === 0) return total;
    }
  }

  async rejections(): Promise<Rejection[]> {
    return this.db.getAll('rejections');
  }

  /** Marks committed commits: their events get server positions and versions. */
  async applyAcks(acks: readonly Ack[]): Promise<void> {
    if (acks.length === 0) return;
    const tx = this.#tx();
    const done = tx.done;
    done.catch(() => undefined);
    const dirty = await abortOnThrow(tx, async () => {
      const [records, meta] = await Promise.all([pendingRecords(tx), tx.objectStore('meta').get('sync')]);
      const pulled = meta?.pulled ?? 0;
      const dirty = new Set<LogRecord>();
      const moved = new Set<string>();
      for (const ack of acks) {
        const found = findCommit(records, ack.commitId);
        if (!found || found.commit.acked) continue;
        const { rec, commit } = found;
        const unconfirmed = rec.events.filter((e) => commit.ids.includes(e.id) && e.position === undefined);
        if (unconfirmed.length === commit.ids.length && ack.positions.every((p) => p <= pulled)) {
          // The server had these events before we appended them (an app re-used ids it had
          // read): the pulled copies are in the log already, so ours go.
          removeCommit(rec, commit);
          dirty.add(rec);
          moved.add(commit.stream);
          continue;
        }
        const byId = new Map(rec.events.map((e) => [e.id, e]));
        commit.ids.forEach((id, i) => {
          const e = byId.get(id);
          if (!e) return;
          e.position = ack.positions[i]!;
          const version = ack.version - commit.ids.length + 1 + i;
          if (e.version !== version) {
            e.version = version;
            moved.add(e.stream);
          }
        });
        commit.acked = true;
        withUnacked(rec);
        dirty.add(rec);
      }
      const log = tx.objectStore('log');
      await Promise.all([...dirty].map((r) => log.put(finalize(r))));
      await this.#renumber(tx, moved, false);
      return dirty;
    });
    await done;
    if (dirty.size > 0) this.deps.onWrite(Math.max(...[...dirty].map((r) => r.to)));
  }

  /**
   * Merges pulled events (in position order) into the log: our own events are confirmed in
   * place, the others are appended as one record, and pending events of the streams they
   * touch are renumbered after them; pending commits the page makes certain to conflict are
   * rebased (see #rebase). Stops at a gap. Returns the last position applied and the commits
   * the rebase rejected.
   */
  applyPulled(events: readonly WireEvent[], head: number): Promise<PullApplied> {
    return this.applyPulledPages([{ events }], head);
  }

  /**
   * `applyPulled` for several consecutive pages in one transaction (a catch-up groups the
   * pages that have arrived): one record per page, but the projections fold the whole group
   * at once, so a row the pages share is read and written once, with the checkpoint. A page
   * that says what it was read after and how far it covered moves the cursor there, over the
   * gaps a stream-limited token sees (see `pageTail`).
   */
  async applyPulledPages(pages: readonly PulledPage[], head: number): Promise<PullApplied> {
    const tx = this.#tx();
    const withdrawn: Withdrawal[] = [];
    const done = tx.done;
    done.catch(() => undefined);
    // A throw (a row that cannot be stored, say) must not leave the log written without the
    // projections: IndexedDB would commit the requests made so far, so the transaction aborts.
    const applied = await abortOnThrow(tx, async () => {
      const log = tx.objectStore('log');
      const metaStore = tx.objectStore('meta');
      const [meta, records, tail] = await Promise.all([
        metaStore.get('sync'),
        pendingRecords(tx),
        tailKey(log),
      ]);
      const m = meta ?? emptyMeta();
      const byId = new Map<string, { rec: LogRecord; ev: StoredEvent }>();
      const pendingStreams = new Set<string>();
      for (const rec of records) {
        for (const ev of rec.events) {
          byId.set(ev.id, { rec, ev });
          if (ev.position === undefined) pendingStreams.add(ev.stream);
        }
      }
      const dirty = new Set<LogRecord>();
      const renumberStreams = new Set<string>();
      const foreign: StoredEvent[] = [];
      const added: LogRecord[] = [];
      let lp = tail;
      for (const page of pages) {
        const { events: fresh, to } = pageTail(m.pulled, page);
        const first = foreign.length;
        for (const e of fresh) {
          const hit = byId.get(e.id);
          if (hit) {
            hit.ev.position = e.position!;
            if (e.recordedAt) hit.ev.recordedAt = e.recordedAt;
            if (hit.ev.version !== e.version) {
              hit.ev.version = e.version;
              renumberStreams.add(e.stream);
            }
            dirty.add(hit.rec);
          } else {
            foreign.push({
              id: e.id,
              stream: e.stream,
              type: e.type,
              schemaVersion: e.schemaVersion,
              data: e.data,
              metadata: e.metadata,
              version: e.version,
              lp: ++lp,
              position: e.position!,
              recordedAt: e.recordedAt ?? this.#now(),
            });
            if (pendingStreams.has(e.stream)) renumberStreams.add(e.stream);
          }
          m.pulled = e.position!;
        }
        m.pulled = Math.max(m.pulled, to);
        if (foreign.length > first) {
          const events = foreign.slice(first);
          added.push({ from: events[0]!.lp, to: lp, events, heads: [] });
        }
      }
      for (const rec of records) {
        const before = rec.commits?.length;
        settle(rec, m.pulled);
        if (rec.commits?.length !== before) dirty.add(rec);
      }
      const writes: Promise<unknown>[] = [...dirty].map((r) => log.put(finalize(r)));
      for (const rec of added) writes.push(log.add(finalize(rec)));
      m.head = Math.max(m.head, head, m.pulled);
      writes.push(metaStore.put(m));
      await Promise.all(writes);
      await this.#renumber(tx, renumberStreams, foreign.length > 0);
      // Pending commits the pulled events have made certain to conflict are decided again (or
      // rejected) in this same transaction: the view never shows their old events on top of
      // server events they were not decided over, not even between this pull and the push.
      // Only streams with pending events can hold a commit to rebase (a cold pull has none),
      // and only a commit that named a version below the highest one pulled now.
      const rebase = new Map<string, number>();
      for (const e of foreign)
        if (pendingStreams.has(e.stream))
          rebase.set(e.stream, Math.max(rebase.get(e.stream) ?? 0, e.version));
      const { rejected, changed } = await this.#rebase(tx, rebase, withdrawn);
      if (changed) await this.deps.projections.rebuild(tx);
      else await this.deps.projections.applyPulled(tx, foreign, records, tail);
      const newTail = changed ? await tailKey(log) : lp;
      return {
        reached: m.pulled,
        rejected,
        notify: foreign.length > 0 ? newTail : dirty.size > 0 ? tail : undefined,
      };
    });
    await done;
    if (applied.notify !== undefined) this.deps.onWrite(applied.notify);
    this.#withdrew(withdrawn);
    return { reached: applied.reached, rejected: applied.rejected };
  }

  /** The server refused a commit: its events leave the view, the refusal is kept and returned. */
  async reject(commitId: string, error: WireError): Promise<Rejection | undefined> {
    const tx = this.#tx();
    const done = tx.done;
    done.catch(() => undefined);
    // Replays and projections run app code: a throw must not commit what was written so far.
    return abortOnThrow(tx, async () => {
      const found = findCommit(await pendingRecords(tx), commitId);
      if (!found || found.commit.acked) {
        await done;
        return undefined;
      }
      const withdrawn: Withdrawal[] = [];
      const rejection = await this.#reject(tx, found.rec, found.commit, error, withdrawn);
      await this.#renumber(tx, new Set([found.commit.stream]), false);
      await this.deps.projections.rebuild(tx);
      await done;
      this.deps.onWrite(found.rec.to);
      this.#withdrew(withdrawn);
      return rejection;
    });
  }

  /** Removes a commit's events and keeps the refusal; the caller renumbers and rebuilds. */
  async #reject(
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
      at: this.#now(),
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

  /**
   * The server answered `conflict`: replays the remembered command on the stream as it now
   * is (confirmed events plus the pending commits before it). New events replace the old
   * ones; a refusal, or a raw append that named a version, is rejected. `stale` means the
   * local log has not yet pulled up to the server's `version` of the stream.
   */
  async replay(commitId: string, serverVersion: number): Promise<ReplayResult> {
    const tx = this.#tx();
    const done = tx.done;
    done.catch(() => undefined);
    // Replays and projections run app code: a throw must not commit what was written so far.
    return abortOnThrow(tx, async () => {
      const records = await pendingRecords(tx);
      const found = findCommit(records, commitId);
      if (!found || found.commit.acked) {
        await done;
        return { kind: 'gone' };
      }
      const { confirmed, earlier } = await this.#prior(tx, records, found.commit);
      if ((confirmed.at(-1)?.version ?? 0) < serverVersion) {
        await done;
        return { kind: 'stale' };
      }
      const withdrawn: Withdrawal[] = [];
      const result = await this.#redecide(
        tx,
        found.rec,
        found.commit,
        confirmed,
        earlier,
        serverVersion,
        withdrawn,
      );
      if (result.kind === 'undecidable') {
        await done;
        return result;
      }
      await this.#renumber(
        tx,
        new Set([found.commit.stream]),
        result.kind === 'replayed' && !!result.commitId,
      );
      await this.deps.projections.rebuild(tx);
      const tail = await tailKey(tx.objectStore('log'));
      await done;
      this.deps.onWrite(result.kind === 'replayed' ? tail : found.rec.to);
      this.#withdrew(withdrawn);
      return result;
    });
  }

  /** A pending commit's stream as it now comes after: confirmed events, then the pending commits before it. */
  async #prior(
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
  async #redecide(
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
      return { kind: 'rejected', rejection: await this.#reject(tx, rec, commit, error, withdrawn) };
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
      return { kind: 'rejected', rejection: await this.#reject(tx, rec, commit, outcome.error, withdrawn) };
    }
    let newEvents: StoredEvent[];
    try {
      newEvents = outcome.events.map((e, i) => {
        const valid = this.deps.validate?.(e);
        return {
          id: this.#newId(),
          stream: commit.stream,
          type: e.type,
          schemaVersion: valid?.schemaVersion ?? 1,
          data: valid ? valid.data : e.data,
          metadata: e.metadata ?? {},
          version: outcome.base + i + 1,
          lp: 0,
          recordedAt: this.#now(),
        };
      });
    } catch (e) {
      const error: WireError = { code: 'Validation', message: e instanceof Error ? e.message : String(e) };
      return { kind: 'rejected', rejection: await this.#reject(tx, rec, commit, error, withdrawn) };
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
      replacedBy = this.#newId();
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
  async #rebase(
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
        const { confirmed, earlier } = await this.#prior(tx, records, first.commit);
        if (!confirmed.every((e, i) => e.version === i + 1)) break;
        const version = confirmed.length;
        const stale = first.commit.expectedVersion === STALE_VERSION;
        if (!stale && namedVersion(first.commit.expectedVersion)! >= version) break;
        const result = await this.#redecide(
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
    if (touched.size > 0) await this.#renumber(tx, touched, true);
    return { rejected, changed };
  }

  /**
   * Renumbers the pending events of `names` after their confirmed events, in outbox order.
   * Stream versions may change here without a record added (`grew`): then an empty record is
   * added at the tail, so that appends deciding from cached versions collide on its `from`
   * (see LogRecord.from) instead of using versions that moved under them.
   */
  async #renumber(tx: Tx, names: ReadonlySet<string>, grew: boolean): Promise<void> {
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
