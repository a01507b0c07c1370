import type { EventEnvelope, ExpectedVersion, Limits, NewEvent, WireError } from '@edgelog/core';
import type { CommitInfo, StoredEvent } from './db.ts';
import type { CommitResult, WireEvent } from './wire.ts';

/**
 * The sync merge logic as pure functions: what to push, what the server's answers mean,
 * how a pulled page merges into the local log, how pending events are renumbered, and how
 * a conflicting command is replayed. No I/O here; sync-store.ts applies the plans.
 */

/** A pending commit with its events, in outbox order. */
export interface OutboxCommit {
  key: number;
  commit: CommitInfo;
  events: StoredEvent[];
}

/** A commit as pushed (core's `Commit` schema). */
export interface WireCommit {
  commitId: string;
  stream: string;
  expectedVersion?: ExpectedVersion;
  events: NewEvent[];
}

export function toWireCommit(c: OutboxCommit): WireCommit {
  const out: WireCommit = {
    commitId: c.commit.commitId,
    stream: c.commit.stream,
    events: c.events.map((e) => ({
      id: e.id,
      type: e.type,
      schemaVersion: e.schemaVersion,
      data: e.data,
      ...(Object.keys(e.metadata).length > 0 ? { metadata: e.metadata } : {}),
    })),
  };
  if (c.commit.expectedVersion !== undefined) out.expectedVersion = c.commit.expectedVersion;
  return out;
}

/** The next push: the oldest commits, within the commit count and (roughly) the body size limits. */
export function planPush(outbox: readonly OutboxCommit[], limits: Limits): OutboxCommit[] {
  const out: OutboxCommit[] = [];
  let bytes = 16;
  for (const c of outbox) {
    if (out.length >= limits.maxCommitsPerPush) break;
    const size = JSON.stringify(toWireCommit(c)).length * 3;
    if (out.length > 0 && bytes + size > limits.maxRequestBytes) break;
    bytes += size;
    out.push(c);
  }
  return out;
}

export interface Ack {
  commitId: string;
  /** The stream's version after the commit. */
  version: number;
  positions: number[];
}

export interface Conflict {
  commitId: string;
  /** The stream's version on the server. */
  version: number;
  events: WireEvent[];
}

export interface PushOutcome {
  acks: Ack[];
  conflicts: Conflict[];
  rejected: Array<{ commitId: string; error: WireError }>;
  /** Commits without a usable answer: pushed again next time (idempotent by commit id). */
  unanswered: string[];
}

/** Sorts the server's answers; an answer that does not fit its commit counts as none. */
export function classifyResults(
  sent: readonly OutboxCommit[],
  results: readonly CommitResult[],
): PushOutcome {
  const byId = new Map(results.map((r) => [r.commitId, r]));
  const out: PushOutcome = { acks: [], conflicts: [], rejected: [], unanswered: [] };
  for (const c of sent) {
    const r = byId.get(c.commit.commitId);
    if (!r) {
      out.unanswered.push(c.commit.commitId);
      continue;
    }
    switch (r.status) {
      case 'committed':
      case 'duplicate':
        if (r.positions.length !== c.events.length) out.unanswered.push(r.commitId);
        else out.acks.push({ commitId: r.commitId, version: r.version, positions: r.positions });
        break;
      case 'conflict':
        out.conflicts.push({ commitId: r.commitId, version: r.version, events: r.events });
        break;
      case 'rejected':
        out.rejected.push({ commitId: r.commitId, error: r.error as WireError });
        break;
      default: {
        const never: never = r;
        throw new Error(`unknown commit result ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

/** Where a pulled page starts and stops: events at or before `pulled` are skipped, a gap stops it. */
/**
 * A pulled page, and (for a page of a pull) the cursor it was read after, how far it covered
 * and whether the server left events out of it (`filtered`: its positions have gaps).
 */
export interface PulledPage {
  events: readonly WireEvent[];
  after?: number;
  coveredTo?: number;
  filtered?: boolean | undefined;
}

/**
 * What of a pulled page follows the cursor `pulled`, and where the cursor goes after it.
 * Positions of the log run on without a gap, so a page is taken as far as its positions do:
 * a gap means something went missing, and the pull fetches again from there. A filtered page
 * (a token limited to some streams sees only theirs) has gaps by nature: read after exactly
 * `pulled`, it holds every event the reader may see up to its `coveredTo` (the protocol's
 * promise), so all of it is taken and the cursor moves to `coveredTo`.
 */
export function pageTail(pulled: number, page: PulledPage): { events: WireEvent[]; to: number } {
  if (!page.filtered || page.after !== pulled || page.coveredTo === undefined) {
    const events = contiguousTail(pulled, page.events);
    return { events, to: events.at(-1)?.position ?? pulled };
  }
  const events = page.events.filter((e) => e.position !== undefined && e.position > pulled);
  const last = events.at(-1)?.position ?? pulled;
  return { events, to: Math.max(last, page.coveredTo) };
}

export function contiguousTail(pulled: number, events: readonly WireEvent[]): WireEvent[] {
  const out: WireEvent[] = [];
  let next = pulled + 1;
  for (const e of events) {
    if (e.position === undefined) continue;
    if (e.position < next) continue;
    if (e.position > next) break;
    out.push(e);
    next++;
  }
  return out;
}

/** The outbox place of each pending event: its commit's `seq`, then its index in the commit. */
export function pendingOrder(commits: Iterable<CommitInfo>): Map<string, number> {
  const order = new Map<string, number>();
  for (const c of commits) {
    for (let i = 0; i < c.ids.length; i++) order.set(c.ids[i]!, c.seq * 1024 + i);
  }
  return order;
}

/**
 * Versions of a stream's events: confirmed events keep the server's; pending events follow
 * the last confirmed version in outbox order. Returns the new version per pending event id.
 */
export function renumber(
  events: readonly StoredEvent[],
  order: ReadonlyMap<string, number>,
): Map<string, number> {
  let base = 0;
  for (const e of events) if (e.position !== undefined && e.version > base) base = e.version;
  const pending = events
    .filter((e) => e.position === undefined)
    .sort(
      (a, b) => (order.get(a.id) ?? Number.MAX_SAFE_INTEGER) - (order.get(b.id) ?? Number.MAX_SAFE_INTEGER),
    );
  const out = new Map<string, number>();
  for (let i = 0; i < pending.length; i++) out.set(pending[i]!.id, base + i + 1);
  return out;
}

/** What replaying a command on the new state gave. */
export type ReplayOutcome =
  | {
      kind: 'events';
      events: Array<{ type: string; data: unknown; metadata?: Record<string, unknown> }>;
      base: number;
    }
  | { kind: 'rejected'; error: WireError }
  /** This worker has no decider of that name (another build of the app): another may have. */
  | { kind: 'undecidable'; error: WireError };

export interface ReplayDecider {
  initialState: () => unknown;
  evolve: (state: unknown, event: never) => unknown;
  decide: (command: never, state: unknown) => unknown;
}

/**
 * Command replay: folds the events the command now comes after and decides again.
 * A refusal (the decider throws) rejects the command; it is never forced. A worker without
 * the command's decider (a tab running another build of the app) cannot decide it: the
 * command is not refused for that, it waits for a worker that has the decider.
 */
export function replayCommand(
  decider: ReplayDecider | undefined,
  deciderName: string,
  command: unknown,
  prior: readonly EventEnvelope[],
): ReplayOutcome {
  if (!decider)
    return {
      kind: 'undecidable',
      error: {
        code: 'Definition',
        message: `no decider named '${deciderName}' in this worker: the command waits for one that has it`,
      },
    };
  try {
    let state = decider.initialState();
    for (const e of prior) state = decider.evolve(state, e as never);
    const decided = decider.decide(command as never, state);
    const list = (Array.isArray(decided) ? decided : [decided]) as Array<{
      type: string;
      data: unknown;
      metadata?: Record<string, unknown>;
    }>;
    return { kind: 'events', events: list, base: prior.length };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return {
      kind: 'rejected',
      error: {
        code: typeof code === 'string' ? (code as WireError['code']) : 'CommandRejected',
        message: e instanceof Error ? e.message : String(e),
      },
    };
  }
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt: number, random: () => number, base = 250, cap = 30_000): number {
  return Math.floor(random() * Math.min(cap, base * 2 ** Math.min(attempt, 20)));
}
