import { describe, expect, it } from 'vitest';
import type { CommitInfo, StoredEvent } from './db.ts';
import { defaultClientLimits } from './local-event-store.ts';
import {
  backoffDelay,
  classifyResults,
  contiguousTail,
  type OutboxCommit,
  pageTail,
  pendingOrder,
  planPush,
  renumber,
  replayCommand,
  toWireCommit,
} from './sync-plan.ts';
import { wireEvent } from './testing/wire-event.ts';
import type { WireEvent } from './wire.ts';

const ev = (id: string, stream: string, version: number, position?: number): StoredEvent => ({
  id,
  stream,
  type: 'T',
  schemaVersion: 1,
  data: { id },
  metadata: {},
  version,
  lp: version,
  recordedAt: 'now',
  ...(position !== undefined ? { position } : {}),
});
const commit = (
  commitId: string,
  ids: string[],
  seq: number,
  extra: Partial<CommitInfo> = {},
): CommitInfo => ({
  commitId,
  stream: 's',
  ids,
  seq,
  ...extra,
});
const outboxOf = (n: number): OutboxCommit[] =>
  Array.from({ length: n }, (_, i) => ({
    key: i + 1,
    commit: commit(`c${i}`, [`e${i}`], i),
    events: [ev(`e${i}`, 's', i + 1)],
  }));
const wire = wireEvent;

describe('planPush', () => {
  it('takes the oldest commits up to the commit limit', () => {
    const plan = planPush(outboxOf(150), defaultClientLimits);
    expect(plan.map((c) => c.commit.commitId)).toEqual(Array.from({ length: 100 }, (_, i) => `c${i}`));
  });
  it('stops before the request size limit but always sends one commit', () => {
    const plan = planPush(outboxOf(10), { ...defaultClientLimits, maxRequestBytes: 1 });
    expect(plan).toHaveLength(1);
  });
  it('puts no server fields on the wire and keeps the expected version', () => {
    const c: OutboxCommit = {
      key: 1,
      commit: commit('c', ['e'], 0, { expectedVersion: 3 }),
      events: [ev('e', 's', 4)],
    };
    expect(toWireCommit(c)).toEqual({
      commitId: 'c',
      stream: 's',
      expectedVersion: 3,
      events: [{ id: 'e', type: 'T', schemaVersion: 1, data: { id: 'e' } }],
    });
  });
});

describe('classifyResults', () => {
  const sent = outboxOf(5);
  it('sorts acks, conflicts, rejections and leaves the unanswered for the next push', () => {
    const out = classifyResults(sent, [
      { status: 'committed', commitId: 'c0', version: 1, positions: [7] },
      { status: 'duplicate', commitId: 'c1', version: 2, positions: [8] },
      { status: 'conflict', commitId: 'c2', version: 5, events: [] },
      { status: 'rejected', commitId: 'c3', error: { code: 'Validation', message: 'bad' } },
    ]);
    expect(out.acks.map((a) => a.commitId)).toEqual(['c0', 'c1']);
    expect(out.conflicts).toEqual([{ commitId: 'c2', version: 5, events: [] }]);
    expect(out.rejected.map((r) => r.commitId)).toEqual(['c3']);
    expect(out.unanswered).toEqual(['c4']);
  });
  it('treats an ack whose positions do not fit the commit as no answer', () => {
    const out = classifyResults(sent.slice(0, 1), [
      { status: 'committed', commitId: 'c0', version: 1, positions: [1, 2] },
    ]);
    expect(out.acks).toEqual([]);
    expect(out.unanswered).toEqual(['c0']);
  });
  it('ignores answers for commits it did not send', () => {
    const out = classifyResults(sent.slice(0, 1), [
      { status: 'committed', commitId: 'zz', version: 1, positions: [1] },
      { status: 'committed', commitId: 'c0', version: 1, positions: [1] },
    ]);
    expect(out.acks.map((a) => a.commitId)).toEqual(['c0']);
  });
});

describe('contiguousTail', () => {
  it('skips what was applied and stops at a gap', () => {
    expect(contiguousTail(2, [wire(1), wire(2), wire(3), wire(4), wire(6)]).map((e) => e.position)).toEqual([
      3, 4,
    ]);
  });
  it('is empty when the page starts after a gap', () => {
    expect(contiguousTail(2, [wire(4), wire(5)])).toEqual([]);
  });
  it('skips a duplicate inside the page', () => {
    expect(contiguousTail(0, [wire(1), wire(1), wire(2)]).map((e) => e.position)).toEqual([1, 2]);
  });
});

describe('renumber', () => {
  it('puts pending events after the last confirmed version, in outbox order', () => {
    const events = [
      ev('a', 's', 1, 10),
      ev('p2', 's', 2),
      ev('b', 's', 2, 11),
      ev('p1', 's', 3),
      ev('c', 's', 3, 12),
    ];
    const order = pendingOrder([commit('x', ['p1'], 1), commit('y', ['p2'], 2)]);
    expect([...renumber(events, order)]).toEqual([
      ['p1', 4],
      ['p2', 5],
    ]);
  });
  it('keeps the order inside one commit', () => {
    const order = pendingOrder([commit('x', ['p1', 'p2', 'p3'], 1)]);
    const events = [ev('p3', 's', 9), ev('p1', 's', 7), ev('p2', 's', 8)];
    expect([...renumber(events, order)]).toEqual([
      ['p1', 1],
      ['p2', 2],
      ['p3', 3],
    ]);
  });
});

describe('replayCommand', () => {
  const counter = {
    initialState: () => 0,
    evolve: (n: number) => n + 1,
    decide: (c: { max: number }, n: number) => {
      if (n >= c.max) throw Object.assign(new Error('full'), { code: 'CommandRejected' });
      return [{ type: 'Added', data: { n } }];
    },
  };
  const prior = [ev('a', 's', 1, 1), ev('b', 's', 2, 2)] as never[];
  it('decides again on the new state', () => {
    expect(replayCommand(counter as never, 'counter', { max: 5 }, prior)).toEqual({
      kind: 'events',
      events: [{ type: 'Added', data: { n: 2 } }],
      base: 2,
    });
  });
  it('turns a refusal into a rejection with its code', () => {
    expect(replayCommand(counter as never, 'counter', { max: 2 }, prior)).toEqual({
      kind: 'rejected',
      error: { code: 'CommandRejected', message: 'full' },
    });
  });
  it('cannot decide, but does not refuse, a command whose decider this worker does not have', () => {
    const out = replayCommand(undefined, 'gone', {}, prior);
    expect(out.kind === 'undecidable' && out.error.code).toBe('Definition');
  });
});

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect(backoffDelay(0, () => 0.999, 100, 1000)).toBe(99);
    expect(backoffDelay(3, () => 0.999, 100, 1000)).toBe(799);
    expect(backoffDelay(10, () => 0.999, 100, 1000)).toBe(999);
    expect(backoffDelay(10, () => 0, 100, 1000)).toBe(0);
  });
});

describe('pageTail', () => {
  const positions = (r: { events: WireEvent[] }) => r.events.map((e) => e.position);
  it('takes a filtered page read after the cursor whole, gaps included, and moves to what it covered', () => {
    const page = { events: [wire(3), wire(7)], after: 2, coveredTo: 9, filtered: true };
    const out = pageTail(2, page);
    expect(positions(out)).toEqual([3, 7]);
    expect(out.to).toBe(9);
    expect(pageTail(2, { events: [], after: 2, coveredTo: 10_002, filtered: true })).toEqual({
      events: [],
      to: 10_002,
    });
  });
  it('trusts an unfiltered page only as far as its positions run on: a gap there means something went missing', () => {
    const out = pageTail(2, { events: [wire(3), wire(4), wire(6)], after: 2, coveredTo: 6 });
    expect(positions(out)).toEqual([3, 4]);
    expect(out.to).toBe(4);
  });
  it('trusts a filtered page read after another cursor only as far as its positions run on', () => {
    const out = pageTail(4, { events: [wire(3), wire(5), wire(9)], after: 2, coveredTo: 9, filtered: true });
    expect(positions(out)).toEqual([5]);
    expect(out.to).toBe(5);
  });
});
