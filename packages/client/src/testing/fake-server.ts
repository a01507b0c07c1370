import { InMemoryEventStore, isEdgelogError, toWireError } from '@edgelog/core';
import type { WireCommit } from '../sync-plan.ts';
import type { LiveConnection, LiveHandlers, Transport } from '../transport.ts';
import type { CommitResult, PullResponse, PushResponse } from '../wire.ts';

/**
 * An in-process stand-in for the edge server's sync API over core's InMemoryEventStore:
 * push answers committed/duplicate/conflict/rejected per commit, pull reads the global log,
 * live delivers new events. For sync tests without I/O.
 */
export class FakeServer {
  readonly store = new InMemoryEventStore();
  readonly #commits = new Map<string, CommitResult>();
  readonly #live = new Set<LiveHandlers>();
  pushes = 0;

  async push(commits: WireCommit[]): Promise<PushResponse> {
    this.pushes++;
    const results: CommitResult[] = [];
    // As the server does: once a commit of a stream did not land, a later commit of that stream
    // that checks the stream's state does not land either (it may have been decided on top of it).
    const failed = new Set<string>();
    for (const c of commits) {
      const dependent = c.expectedVersion !== undefined && c.expectedVersion !== 'any';
      const r = await this.#pushOne(
        failed.has(c.stream) && dependent ? { ...c, expectedVersion: Number.MAX_SAFE_INTEGER } : c,
      );
      if (r.status === 'conflict' || r.status === 'rejected') failed.add(c.stream);
      results.push(r);
    }
    await this.#notify();
    return { results: structuredClone(results) };
  }

  async #pushOne(c: WireCommit): Promise<CommitResult> {
    const seen = this.#commits.get(c.commitId);
    if (seen && (seen.status === 'committed' || seen.status === 'duplicate'))
      return { ...seen, status: 'duplicate' };
    try {
      const r = await this.store.append(
        c.stream,
        c.events,
        c.expectedVersion === undefined ? {} : { expectedVersion: c.expectedVersion },
      );
      const result: CommitResult = {
        status: 'committed',
        commitId: c.commitId,
        version: r.version,
        positions: r.positions,
      };
      this.#commits.set(c.commitId, result);
      return result;
    } catch (e) {
      if (isEdgelogError(e, 'WrongExpectedVersion')) {
        const actual = e.details.actual;
        const expected = e.details.expected;
        const from = typeof expected === 'number' ? expected + 1 : 1;
        const events =
          actual > 0 ? (await this.store.readStream(c.stream, { from, limit: 5000 })).events : [];
        return { status: 'conflict', commitId: c.commitId, version: actual, events: structuredClone(events) };
      }
      return { status: 'rejected', commitId: c.commitId, error: toWireError(e) };
    }
  }

  async pull(after: number, limit: number): Promise<PullResponse> {
    return structuredClone(await this.store.readAll({ after, limit }));
  }

  live(after: number, handlers: LiveHandlers): LiveConnection {
    this.#live.add(handlers);
    let cursor = after;
    const wrapped: LiveHandlers = {
      onEvents: (events) => {
        const fresh = events.filter((e) => (e.position ?? 0) > cursor);
        if (fresh.length > 0) cursor = fresh.at(-1)!.position!;
        handlers.onEvents(fresh);
      },
      onHead: handlers.onHead,
      onClose: handlers.onClose,
    };
    this.#live.delete(handlers);
    this.#live.add(wrapped);
    void this.store.readAll({ after, limit: 5000 }).then((page) => wrapped.onHead(page.head));
    return {
      close: () => {
        if (this.#live.delete(wrapped)) wrapped.onClose('closed');
      },
    };
  }

  /** Cuts every live connection, as a dropped network would. */
  cutLive(): void {
    for (const h of [...this.#live]) {
      this.#live.delete(h);
      h.onClose('cut');
    }
  }

  async #notify(): Promise<void> {
    if (this.#live.size === 0) return;
    const page = await this.store.readAll({ after: 0, limit: 5000 });
    for (const h of this.#live) h.onEvents(structuredClone(page.events));
  }

  transport(): Transport {
    return { push: (c) => this.push(c), pull: (a, l) => this.pull(a, l), live: (a, h) => this.live(a, h) };
  }
}

export interface Faults {
  /** Probability that a request never reaches the server. */
  dropRequest?: number;
  /** Probability that the server acts but the answer is lost. */
  dropAnswer?: number;
  /** Probability that a push is sent twice. */
  duplicate?: number;
  /** Probability that a copy of a push is held back and delivered late, before the next push. */
  reorder?: number;
  /** Probability that live events are cut mid-batch (the tail of the batch is lost and the socket closes). */
  cutLive?: number;
}

/** A deterministic pseudo-random source (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Wraps a transport and injects the faults of a real network. */
export function faulty(inner: Transport, faults: Faults, random: () => number): Transport {
  const hit = (p: number | undefined) => p !== undefined && random() < p;
  const lost = () => Object.assign(new Error('injected: lost'), { code: 'Offline' });
  let late: WireCommit[] | undefined;
  return {
    async push(commits) {
      if (late) {
        const held = late;
        late = undefined;
        await inner.push(held);
      }
      if (hit(faults.reorder)) late = structuredClone(commits);
      if (hit(faults.dropRequest)) throw lost();
      if (hit(faults.duplicate)) await inner.push(commits);
      const answer = await inner.push(commits);
      if (hit(faults.dropAnswer)) throw lost();
      return answer;
    },
    async pull(after, limit) {
      if (hit(faults.dropRequest)) throw lost();
      const answer = await inner.pull(after, limit);
      if (hit(faults.dropAnswer)) throw lost();
      return answer;
    },
    live(after, handlers) {
      let conn: LiveConnection | undefined;
      conn = inner.live(after, {
        onEvents(events) {
          if (events.length > 1 && hit(faults.cutLive)) {
            handlers.onEvents(events.slice(0, Math.floor(events.length / 2)));
            conn?.close();
            return;
          }
          handlers.onEvents(events);
        },
        onHead: handlers.onHead,
        onClose: handlers.onClose,
      });
      return conn;
    },
  };
}
