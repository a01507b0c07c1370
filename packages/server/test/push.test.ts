import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { SequencerDO } from '../src/sequencer-do.ts';
import { appendTo, call, freshStore, newEvent, token } from './helpers.ts';

interface Result {
  status: string;
  commitId: string;
  version?: number;
  positions?: number[];
  events?: Array<{ id: string; version: number }>;
  error?: { code: string; message: string };
}

async function setup() {
  const store = freshStore('push');
  const t = await token({ store });
  const push = async (commits: unknown[]) => {
    const res = await call(`/v1/stores/${store}/sync/push`, { method: 'POST', token: t, json: { commits } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { results: Result[] }).results;
  };
  const readAll = async () =>
    (await (await call(`/v1/stores/${store}/sync/pull?limit=5000`, { token: t })).json()) as {
      events: Array<{ id: string; stream: string; position: number }>;
      head: number;
    };
  return { store, t, push, readAll };
}

const commit = (stream: string, events: unknown[], expectedVersion?: unknown) => ({
  commitId: crypto.randomUUID(),
  stream,
  events,
  ...(expectedVersion === undefined ? {} : { expectedVersion }),
});

describe('push answers commit by commit', () => {
  it('commits, then answers a retried push as duplicate with the original versions and positions', async () => {
    const { push } = await setup();
    const commits = [
      commit('a', [newEvent(), newEvent()], 'no_stream'),
      commit('b', [newEvent()]),
      commit('a', [newEvent()], 2),
    ];
    const first = await push(commits);
    expect(first.map((r) => r.status)).toEqual(['committed', 'committed', 'committed']);
    expect(first[0]).toMatchObject({ commitId: commits[0]?.commitId, version: 2 });
    expect(first[2]).toMatchObject({ commitId: commits[2]?.commitId, version: 3 });
    const again = await push(commits);
    expect(again.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate']);
    expect(again.map((r) => [r.version, r.positions])).toEqual(first.map((r) => [r.version, r.positions]));
  });

  it('one bad commit never sinks the others', async () => {
    const { push, readAll } = await setup();
    const results = await push([
      commit('a', [newEvent()]),
      { commitId: 'not-a-uuid', stream: 'b', events: [newEvent()] },
      commit('$bad', [newEvent()]),
      commit('c', [{ ...newEvent(), data: 'x'.repeat(70_000) }]),
      commit('d', [{ ...newEvent(), type: '$sys' }]),
      'garbage',
      commit('e', [newEvent()], 3),
      commit('f', [newEvent()]),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'committed',
      'rejected',
      'rejected',
      'rejected',
      'rejected',
      'rejected',
      'conflict',
      'committed',
    ]);
    expect(results.map((r) => r.error?.code)).toEqual([
      undefined,
      'Validation',
      'Validation',
      'PayloadTooLarge',
      'Validation',
      'Validation',
      undefined,
      undefined,
    ]);
    expect(results[1]?.commitId).toBe('not-a-uuid');
    const all = await readAll();
    expect(all.events.map((e) => e.stream)).toEqual(expect.arrayContaining(['a', 'f']));
    expect(all.events).toHaveLength(2);
  });

  it('a conflict carries the current version and exactly the events the client has not seen', async () => {
    const { push } = await setup();
    const seen = [newEvent(), newEvent()];
    const unseen = [newEvent(), newEvent(), newEvent()];
    await push([commit('acc', seen)]);
    await push([commit('acc', unseen, 2)]);
    const [result] = await push([commit('acc', [newEvent()], 2)]);
    expect(result?.status).toBe('conflict');
    expect(result?.version).toBe(5);
    expect(result?.events?.map((e) => [e.id, e.version])).toEqual(unseen.map((e, i) => [e.id, i + 3]));
    const [fromScratch] = await push([commit('acc', [newEvent()], 'no_stream')]);
    expect(fromScratch?.events?.map((e) => e.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('an IdempotencyConflict is rejected for that commit only', async () => {
    const { push } = await setup();
    const e = newEvent();
    await push([commit('a', [e])]);
    const results = await push([commit('a', [e, newEvent()]), commit('b', [newEvent()])]);
    expect(results.map((r) => [r.status, r.error?.code])).toEqual([
      ['rejected', 'IdempotencyConflict'],
      ['committed', undefined],
    ]);
  });

  it('commits of one stream apply in order; streams proceed side by side', async () => {
    const { push, readAll } = await setup();
    const commits = Array.from({ length: 30 }, (_, i) =>
      commit(`s-${i % 3}`, [newEvent()], Math.floor(i / 3)),
    );
    const results = await push(commits);
    expect(results.every((r) => r.status === 'committed')).toBe(true);
    const all = await readAll();
    expect(all.head).toBe(30);
    expect(all.events.map((e) => e.position)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('a push envelope that is not a list of 1..100 commits is a 400', async () => {
    const { store, t } = await setup();
    for (const body of [
      {},
      { commits: [] },
      { commits: Array.from({ length: 101 }, () => commit('a', [newEvent()])) },
    ]) {
      const res = await call(`/v1/stores/${store}/sync/push`, { method: 'POST', token: t, json: body });
      expect(res.status).toBe(400);
    }
  });
});

describe('concurrency (I4)', () => {
  it('of 20 concurrent HTTP appends with one expected version exactly one wins, and its events are the only ones stored', async () => {
    const store = freshStore('race');
    const t = await token({ store });
    const path = `/v1/stores/${store}/streams/acc/events`;
    expect((await call(path, { method: 'POST', token: t, json: { events: [newEvent()] } })).status).toBe(200);
    const batches = Array.from({ length: 20 }, () => [newEvent(), newEvent()]);
    const answers = await Promise.all(
      batches.map((events) => call(path, { method: 'POST', token: t, json: { expectedVersion: 1, events } })),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    const loser = answers.find((r) => r.status === 409) as Response;
    expect(await loser.json()).toMatchObject({
      error: { code: 'WrongExpectedVersion', details: { expected: 1, actual: 3 } },
    });
    const winner = batches[statuses.indexOf(200)] ?? [];
    const page = (await (await call(path, { token: t })).json()) as {
      events: Array<{ id: string }>;
      version: number;
    };
    expect(page.version).toBe(3);
    expect(page.events.slice(1).map((e) => e.id)).toEqual(winner.map((e) => e.id));
    const all = (await (await call(`/v1/stores/${store}/events`, { token: t })).json()) as { head: number };
    expect(all.head).toBe(3);
  });
});

describe('group commit', () => {
  it('concurrent commits from many streams share storage transactions in the sequencer', async () => {
    const store = freshStore('group');
    const t = await token({ store });
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call(`/v1/stores/${store}/streams/g-${i}/events`, {
          method: 'POST',
          token: t,
          json: { events: [newEvent()] },
        }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));
    const stats = await runInDurableObject(
      env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store)),
      (instance: SequencerDO) => ({ ...instance.stats }),
    );
    expect(stats.commits).toBe(40);
    expect(stats.transactions).toBeLessThan(40);
    const all = (await (await call(`/v1/stores/${store}/events`, { token: t })).json()) as {
      events: Array<{ position: number }>;
    };
    expect(all.events.map((e) => e.position)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });
});

describe('the sequencer writes first and lets the id index refuse a taken id', () => {
  it('a commit refused inside a group leaves nothing of itself and the others land gap-free', async () => {
    const store = freshStore('refused');
    const t = await token({ store });
    const append = appendTo(store, t);
    const first = newEvent();
    expect((await append('s-a', [first])).status).toBe(200);
    const refusedB = newEvent();
    const refusedA = newEvent();
    const answers = await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => append(`g-${i}`, [newEvent(), newEvent()])),
      // An id of s-a on another stream, and a partial retry on s-a at its next version.
      append('s-b', [refusedB, first]),
      append('s-a', [first, refusedA], 1),
    ]);
    expect(answers.map((r) => r.status)).toEqual([...Array(10).fill(200), 409, 409]);
    for (const r of answers.slice(10))
      expect(await r.json()).toMatchObject({ error: { code: 'IdempotencyConflict' } });
    const all = (await (await call(`/v1/stores/${store}/events?limit=100`, { token: t })).json()) as {
      events: Array<{ position: number; stream: string; id: string }>;
      head: number;
    };
    expect(all.head).toBe(21);
    expect(all.events.map((e) => e.position)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    expect(all.events.filter((e) => e.stream === 's-b')).toEqual([]);
    expect(all.events.filter((e) => e.stream === 's-a').map((e) => e.id)).toEqual([first.id]);
    expect((await call(`/v1/stores/${store}/streams/s-b/events`, { token: t })).status).toBe(404);
    // Both refused commits left the log as it was, their fresh ids included: those ids append
    // alone now, at the next positions.
    expect(await (await append('s-a', [refusedA], 1)).json()).toEqual({ version: 2, positions: [22] });
    expect(await (await append('s-b', [refusedB])).json()).toEqual({ version: 1, positions: [23] });
  });
});
