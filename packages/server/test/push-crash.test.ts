import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { StreamDO } from '../src/stream-do.ts';
import { call, freshStore, newEvent, token } from './helpers.ts';

const streamStub = (store: string, stream: string) =>
  env.STREAMS.get(env.STREAMS.idFromName(`${store}/${stream}`));

interface PushAnswer {
  results: Array<{ status: string; commitId: string; positions?: number[]; error?: { code: string } }>;
}

describe('push: a crash is not a refusal', () => {
  it('fails the whole push with 5xx when a commit crashed, so the client pushes again instead of dropping it', async () => {
    const store = freshStore('pushcrash');
    const t = await token({ store });
    const push = (body: unknown) =>
      call(`/v1/stores/${store}/sync/push`, { method: 'POST', token: t, json: body });
    // The commit to acc-1 reaches the global log, then its StreamDO dies before answering.
    await runInDurableObject(streamStub(store, 'acc-1'), (instance: StreamDO) => {
      instance.fault = 'after-sequencer-commit';
    });
    const body = {
      commits: [
        {
          commitId: crypto.randomUUID(),
          stream: 'acc-1',
          expectedVersion: 'no_stream',
          events: [newEvent()],
        },
        {
          commitId: crypto.randomUUID(),
          stream: 'acc-2',
          expectedVersion: 'no_stream',
          events: [newEvent()],
        },
      ],
    };
    const crashed = await push(body);
    expect(crashed.status).toBeGreaterThanOrEqual(500);
    await crashed.body?.cancel();

    // Pushed again, each commit is answered once: the crashed one had landed (duplicate).
    const again = await push(body);
    expect(again.status).toBe(200);
    const { results } = (await again.json()) as PushAnswer;
    expect(results.map((r) => r.status)).toEqual(['duplicate', 'duplicate']);
    const all = (await (await call(`/v1/stores/${store}/events`, { token: t })).json()) as {
      events: Array<{ stream: string }>;
    };
    expect(all.events.map((e) => e.stream).sort()).toEqual(['acc-1', 'acc-2']);
  });

  it('still answers a commit refused for its own fault as rejected, beside commits that land', async () => {
    const store = freshStore('pushcrash');
    const t = await token({ store });
    const res = await call(`/v1/stores/${store}/sync/push`, {
      method: 'POST',
      token: t,
      json: {
        commits: [
          { commitId: crypto.randomUUID(), stream: 'acc-1', events: [{ ...newEvent(), type: '$reserved' }] },
          { commitId: crypto.randomUUID(), stream: 'acc-2', events: [newEvent()] },
        ],
      },
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as PushAnswer;
    expect(results.map((r) => [r.status, r.error?.code])).toEqual([
      ['rejected', 'Validation'],
      ['committed', undefined],
    ]);
  });
});
