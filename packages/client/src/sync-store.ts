import type { EventEnvelope, WireError } from '@edgelog/core';
import { randomId } from '@edgelog/core';
import type { StoreNames } from 'idb';
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
import { writeScope } from './local-log.ts';
import { tailKey } from './log-reads.ts';
import type { ProjectionRunner } from './projections.ts';
import { pendingRecords, Rebaser, type RebaserDeps, removeCommit, type Tx } from './rebase.ts';
import type { Withdrawal } from './status.ts';
import { type Ack, type OutboxCommit, type PulledPage, pageTail, type ReplayDecider } from './sync-plan.ts';
import type { WireEvent } from './wire.ts';

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

const emptyMeta = (): SyncMeta => ({ key: 'sync', pulled: 0, head: 0 });

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

/**
 * The sync side of the local log: the outbox, acknowledgements, pulled pages, rejections and
 * command replay, each in one IndexedDB transaction.
 */
export class SyncStore {
  readonly #now: () => string;
  readonly #rebaser: Rebaser;

  constructor(
    readonly db: LogDb,
    private readonly deps: SyncStoreDeps,
  ) {
    this.#now = deps.now ?? (() => new Date().toISOString());
    const rebaser: RebaserDeps = {
      projections: deps.projections,
      deciders: deps.deciders,
      newId: deps.newId ?? randomId,
      now: this.#now,
    };
    if (deps.upcast) rebaser.upcast = deps.upcast;
    if (deps.validate) rebaser.validate = deps.validate;
    this.#rebaser = new Rebaser(rebaser);
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
      await this.#rebaser.renumber(tx, moved, false);
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
      await this.#rebaser.renumber(tx, renumberStreams, foreign.length > 0);
      // Pending commits the pulled events have made certain to conflict are decided again (or
      // rejected) in this same transaction: the view never shows their old events on top of
      // server events they were not decided over, not even between this pull and the push.
      // Only streams with pending events can hold a commit to rebase (a cold pull has none),
      // and only a commit that named a version below the highest one pulled now.
      const rebase = new Map<string, number>();
      for (const e of foreign)
        if (pendingStreams.has(e.stream))
          rebase.set(e.stream, Math.max(rebase.get(e.stream) ?? 0, e.version));
      const { rejected, changed } = await this.#rebaser.rebase(tx, rebase, withdrawn);
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
      const rejection = await this.#rebaser.reject(tx, found.rec, found.commit, error, withdrawn);
      await this.#rebaser.renumber(tx, new Set([found.commit.stream]), false);
      await this.deps.projections.rebuild(tx);
      await done;
      this.deps.onWrite(found.rec.to);
      this.#withdrew(withdrawn);
      return rejection;
    });
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
      const { confirmed, earlier } = await this.#rebaser.prior(tx, records, found.commit);
      if ((confirmed.at(-1)?.version ?? 0) < serverVersion) {
        await done;
        return { kind: 'stale' };
      }
      const withdrawn: Withdrawal[] = [];
      const result = await this.#rebaser.redecide(
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
      await this.#rebaser.renumber(
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
}
