import { describe, expect, it } from 'vitest';
import { call, freshStore, newEvent, token } from './helpers.ts';

// Found by the soak (test/soak): a client decided W on top of its own pending commit D
// (W's expected version counts D's event). D conflicted because another writer's event took
// version 2; W's expected version 2 then matched that other event, and W committed on a
// history it was never decided on (a balance went below zero).

interface Result {
  status: string;
  version?: number;
  positions?: number[];
  events?: Array<{ id: string; version: number }>;
}

async function setup() {
  const store = freshStore('chain');
  const t = await token({ store });
  const push = async (commits: unknown[]) => {
    const res = await call(`/v1/stores/${store}/sync/push`, { method: 'POST', token: t, json: { commits } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { results: Result[] }).results;
  };
  const streamIds = async (stream: string) => {
    const res = await call(`/v1/stores/${store}/streams/${stream}/events`, { token: t });
    return ((await res.json()) as { events: Array<{ id: string }> }).events.map((e) => e.id);
  };
  return { push, streamIds };
}

const commit = (stream: string, events: unknown[], expectedVersion?: unknown) => ({
  commitId: crypto.randomUUID(),
  stream,
  events,
  ...(expectedVersion === undefined ? {} : { expectedVersion }),
});

describe('push: nothing lands on top of a commit of its stream that did not', () => {
  it('answers conflict to a later commit whose expected version matches only by coincidence', async () => {
    const { push, streamIds } = await setup();
    const first = newEvent();
    const other = newEvent();
    expect((await push([commit('acct', [first], 'no_stream')]))[0]?.status).toBe('committed');
    expect((await push([commit('acct', [other], 1)]))[0]?.status).toBe('committed');
    // D was decided at version 1 (conflicts: the stream is at 2); W was decided after D, at 2.
    const d = newEvent();
    const w = newEvent();
    const results = await push([commit('acct', [d], 1), commit('acct', [w], 2)]);
    expect(results.map((r) => r.status)).toEqual(['conflict', 'conflict']);
    expect(results[1]?.version).toBe(2);
    expect(await streamIds('acct')).toEqual([first.id, other.id]);
  });

  it('answers that conflict with the events after the version its writer saw under the failed commits', async () => {
    const { push, streamIds } = await setup();
    const stored = [newEvent(), newEvent(), newEvent()];
    for (const [i, e] of stored.entries())
      expect((await push([commit('acct', [e], i)]))[0]?.status).toBe('committed');
    // The stream is at 3: D (decided at 1) conflicts; W was decided after D, at 2, but that 2
    // counts D's event: W's writer has seen versions up to 1 only, so it gets [2, 3] as D does.
    const results = await push([commit('acct', [newEvent()], 1), commit('acct', [newEvent()], 2)]);
    expect(results.map((r) => r.status)).toEqual(['conflict', 'conflict']);
    expect(results.map((r) => r.version)).toEqual([3, 3]);
    expect(results[0]?.events?.map((e) => e.id)).toEqual([stored[1]?.id, stored[2]?.id]);
    expect(results[1]?.events?.map((e) => e.id)).toEqual([stored[1]?.id, stored[2]?.id]);
    // After a commit that named no version, a later one answers after its own expected version.
    const anyFirst = await push([
      commit('acct', [{ ...newEvent(), type: '$bad' }]),
      commit('acct', [newEvent()], 2),
    ]);
    expect(anyFirst.map((r) => r.status)).toEqual(['rejected', 'conflict']);
    expect(anyFirst[1]?.events?.map((e) => e.id)).toEqual([stored[2]?.id]);
    // The base is the first failed commit's, not a later one's.
    const three = await push([
      commit('acct', [newEvent()], 'no_stream'),
      commit('acct', [newEvent()], 1),
      commit('acct', [newEvent()], 2),
    ]);
    expect(three.map((r) => r.status)).toEqual(['conflict', 'conflict', 'conflict']);
    for (const r of three) expect(r.events?.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(await streamIds('acct')).toEqual(stored.map((e) => e.id));
  });

  it('still answers duplicate for a later commit stored already, and lets `any` commits through', async () => {
    const { push, streamIds } = await setup();
    const a = newEvent();
    const b = newEvent();
    const c = newEvent();
    const stored = commit('s', [b], 1);
    expect((await push([commit('s', [a], 'no_stream'), stored])).map((r) => r.status)).toEqual([
      'committed',
      'committed',
    ]);
    // A retry where an earlier commit now conflicts: the stored one is still a duplicate.
    const results = await push([commit('s', [newEvent()], 'no_stream'), stored, commit('s', [c])]);
    expect(results.map((r) => r.status)).toEqual(['conflict', 'duplicate', 'committed']);
    expect(results[1]?.version).toBe(2);
    expect(await streamIds('s')).toEqual([a.id, b.id, c.id]);
  });

  it('applies after a rejected commit too, and never across streams', async () => {
    const { push, streamIds } = await setup();
    const results = await push([
      commit('x', [{ ...newEvent(), type: '$bad' }], 'no_stream'),
      commit('x', [newEvent()], 'no_stream'),
      commit('y', [newEvent()], 'no_stream'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'conflict', 'committed']);
    expect(await streamIds('y')).toHaveLength(1);
  });
});
