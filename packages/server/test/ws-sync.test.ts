import { runInDurableObject } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import type { ServerMessage } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import type { SequencerDO } from '../src/sequencer-do.ts';
import { BASE, call, freshStore, newEvent, token } from './helpers.ts';

describe('stream sockets and commits a StreamDO learns from the log (I6)', () => {
  it('a live subscriber gets a commit whose answer the StreamDO lost, before the next one', async () => {
    const store = freshStore('wssync');
    const t = await token({ store });
    const res = await exports.default.fetch(
      new Request(`${BASE}/v1/stores/${store}/streams/acc-1/ws`, {
        headers: { Upgrade: 'websocket', authorization: `Bearer ${t}` },
      }),
    );
    const ws = res.webSocket;
    if (!ws) throw new Error(`upgrade refused: ${res.status}`);
    ws.accept();
    const messages: ServerMessage[] = [];
    ws.addEventListener('message', (e) => messages.push(JSON.parse(String(e.data)) as ServerMessage));
    const until = async (check: () => boolean, what: string) => {
      const start = Date.now();
      while (!check()) {
        if (Date.now() - start > 10_000) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const versions = () =>
      messages.flatMap((m) => (m.type === 'events' ? m.events.map((e) => e.version) : []));
    await until(() => messages.some((m) => m.type === 'ready'), 'ready');
    ws.send(JSON.stringify({ type: 'subscribe', id: 's', after: 0 }));
    await until(() => messages.some((m) => m.type === 'caught-up'), 'caught-up');

    // The sequencer commits the first append, then dies before answering: the append fails,
    // and the StreamDO learns of the commit only when it next copies from the log.
    await runInDurableObject(
      env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store)),
      (instance: SequencerDO) => {
        instance.fault = 'after-commit';
      },
    );
    const append = () =>
      call(`/v1/stores/${store}/streams/acc-1/events`, {
        method: 'POST',
        token: t,
        json: { events: [newEvent()] },
      });
    const failed = await append();
    expect(failed.status).toBeGreaterThanOrEqual(500);
    await failed.body?.cancel();
    const ok = await append();
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ version: 2 });

    await until(() => versions().length >= 2, 'both events');
    await new Promise((r) => setTimeout(r, 30));
    expect(versions()).toEqual([1, 2]);
    ws.close(1000);
  });
});
