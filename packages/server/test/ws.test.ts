import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env, exports } from 'cloudflare:workers';
import type { ServerMessage } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import type { SequencerDO } from '../src/sequencer-do.ts';
import type { StreamDO } from '../src/stream-do.ts';
import { BASE, call, freshStore, newEvent, sequencerStub, token } from './helpers.ts';
import { eventsOf, open, type Socket } from './sockets.ts';

async function setup() {
  const store = freshStore('ws');
  const t = await token({ store });
  const append = async (stream: string, n: number) => {
    const res = await call(`/v1/stores/${store}/streams/${stream}/events`, {
      method: 'POST',
      token: t,
      json: { events: Array.from({ length: n }, () => newEvent()) },
    });
    expect(res.status).toBe(200);
  };
  return { store, t, append };
}

/** The code the socket was closed with, 0 while it is open. */
function closeCode(socket: Socket): () => number {
  let code = 0;
  socket.ws.addEventListener('close', (e) => {
    code = e.code;
  });
  return () => code;
}

describe('WebSocket subscriptions of the global log (I6)', () => {
  it('catch-up pages, then caught-up, then live: no event skipped or repeated while writers race', async () => {
    const { store, t, append } = await setup();
    for (let i = 0; i < 12; i++) await append(`pre-${i % 3}`, 100);
    const socket = await open(store, t);
    await socket.until((m) => m.some((x) => x.type === 'ready'), 'ready');
    const writers = Promise.all(
      Array.from({ length: 8 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 5; i++) await append(`live-${w}`, 3);
        })(),
      ),
    );
    socket.send({ type: 'subscribe', id: 's' });
    await writers;
    const total = 1200 + 8 * 5 * 3;
    await socket.until((m) => eventsOf(m).length >= total, `${total} events`);
    await new Promise((r) => setTimeout(r, 50));
    const positions = eventsOf(socket.messages).map((e) => e.position);
    expect(positions).toEqual(Array.from({ length: total }, (_, i) => i + 1));

    const caughtUpAt = socket.messages.findIndex((m) => m.type === 'caught-up');
    const marker = socket.messages[caughtUpAt] as Extract<ServerMessage, { type: 'caught-up' }>;
    const before = eventsOf(socket.messages.slice(0, caughtUpAt));
    const after = eventsOf(socket.messages.slice(caughtUpAt));
    expect(before.at(-1)?.position ?? 0).toBe(marker.position);
    expect(after[0]?.position ?? marker.position + 1).toBe(marker.position + 1);
    expect(socket.messages.filter((m) => m.type === 'events' && m.events.length > 500)).toEqual([]);
    // Nothing is left out of an unfiltered subscription: no message says so, and each one's
    // coverage ends at its last event.
    for (const m of socket.messages)
      if (m.type === 'events') {
        expect(m.filtered).toBeUndefined();
        expect(m.coveredTo).toBe(m.events.at(-1)?.position);
      }
    socket.ws.close(1000);
  });

  it('a live subscription that missed a commit reads it from the log instead of skipping it', async () => {
    const { store, t, append } = await setup();
    await append('a', 2);
    const socket = await open(store, t);
    socket.send({ type: 'subscribe', id: 's', filter: { streamPrefix: 'b' } });
    await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
    // One commit is not broadcast (as if the object had lost it between commit and send).
    await runInDurableObject(sequencerStub(store), (instance: SequencerDO) => {
      const target = instance as unknown as { broadcast: (...a: unknown[]) => void };
      const broadcast = target.broadcast;
      target.broadcast = function (this: unknown) {
        target.broadcast = broadcast;
      };
    });
    await append('b-1', 2);
    await append('a', 1);
    await append('b-2', 1);
    await socket.until((m) => eventsOf(m).length >= 3, '3 events');
    await new Promise((r) => setTimeout(r, 50));
    expect(eventsOf(socket.messages).map((e) => [e.stream, e.position])).toEqual([
      ['b-1', 3],
      ['b-1', 4],
      ['b-2', 6],
    ]);
    // The messages chain (each `after` is the previous `coveredTo`) and claim nothing unsent.
    const chain = socket.messages.flatMap((m) => (m.type === 'events' ? [[m.after, m.coveredTo]] : []));
    expect(chain[0]![0]).toBe(0);
    for (let i = 1; i < chain.length; i++) expect(chain[i]![0]).toBe(chain[i - 1]![1]);
    expect(chain.at(-1)![1]).toBe(6);
    // The catch-up's message left a's events out, the live one (6 right after 5) nothing.
    const filtered = socket.messages.flatMap((m) => (m.type === 'events' ? [m.filtered ?? false] : []));
    expect(filtered).toEqual([true, false]);
    socket.ws.close(1000);
  });

  it('resumes from a checkpoint after a drop: exactly the events after it', async () => {
    const { store, t, append } = await setup();
    await append('a', 10);
    const first = await open(store, t);
    first.send({ type: 'subscribe', id: 's', after: 0 });
    await first.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
    const checkpoint = eventsOf(first.messages).at(-1)?.position ?? 0;
    first.ws.close(1000);
    await append('a', 5);
    const second = await open(store, t);
    second.send({ type: 'subscribe', id: 's', after: checkpoint });
    await second.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
    await append('b', 2);
    await second.until((m) => eventsOf(m).length >= 7, '7 events');
    expect(eventsOf(second.messages).map((e) => e.position)).toEqual([11, 12, 13, 14, 15, 16, 17]);
    second.ws.close(1000);
  });

  it('filters by stream prefix, types and streams, and by the token prefixes, live and in catch-up', async () => {
    const { store, append } = await setup();
    await append('acc-1', 2);
    await append('ord-1', 2);
    const limited = await token({ store, role: 'reader', streams: ['acc-'] });
    const socket = await open(store, limited);
    socket.send({ type: 'subscribe', id: 's' });
    socket.send({ type: 'subscribe', id: 'only', streams: ['acc-2'] });
    socket.send({ type: 'subscribe', id: 'denied', streams: ['ord-1'] });
    await socket.until((m) => m.filter((x) => x.type === 'caught-up').length >= 2, 'two caught-up');
    await socket.until((m) => m.some((x) => x.type === 'error'), 'error');
    await append('ord-2', 1);
    await append('acc-2', 1);
    await socket.until((m) => eventsOf(m, 'only').length >= 1, 'acc-2 event');
    await new Promise((r) => setTimeout(r, 30));
    expect(eventsOf(socket.messages).map((e) => e.stream)).toEqual(['acc-1', 'acc-1', 'acc-2']);
    expect(eventsOf(socket.messages, 'only').map((e) => e.stream)).toEqual(['acc-2']);
    const error = socket.messages.find((m) => m.type === 'error');
    expect(error).toMatchObject({ subscription: 'denied', error: { code: 'Forbidden' } });
    socket.ws.close(1000);
  });

  it('answers a WebSocket route asked without an upgrade with 426 UpgradeRequired', async () => {
    const store = freshStore();
    const auth = await token({ store });
    for (const path of [`/v1/stores/${store}/ws`, `/v1/stores/${store}/streams/s-1/ws`]) {
      const res = await call(path, { token: auth });
      expect(res.status).toBe(426);
      expect(await res.json()).toMatchObject({
        error: { code: 'UpgradeRequired', message: 'expected a WebSocket upgrade' },
      });
    }
  });

  it('takes the token in the first message when there is no Authorization header', async () => {
    const { store, t, append } = await setup();
    await append('a', 3);
    const socket = await open(store);
    socket.send({ type: 'subscribe', id: 's' });
    await socket.until((m) => m.some((x) => x.type === 'error'), 'error');
    expect(socket.messages[0]).toMatchObject({ type: 'error', error: { code: 'Unauthorized' } });
    socket.send({ type: 'auth', token: t });
    await socket.until((m) => m.some((x) => x.type === 'ready'), 'ready');
    socket.send({ type: 'subscribe', id: 's', filter: { types: ['Tested'] } });
    await socket.until((m) => eventsOf(m).length >= 3, '3 events');
    socket.ws.close(1000);
  });

  it('refuses an auth message for another store and closes', async () => {
    const { store } = await setup();
    const socket = await open(store);
    let closed = false;
    socket.ws.addEventListener('close', () => {
      closed = true;
    });
    socket.send({ type: 'auth', token: await token({ store: 'someone-else' }) });
    await socket.until((m) => m.some((x) => x.type === 'error'), 'error');
    expect(socket.messages[0]).toMatchObject({ type: 'error', error: { code: 'Forbidden' } });
    await socket.until(() => closed, 'close');
  });

  it('closes a live socket, global or stream, whose re-auth fails, and sends it nothing more', async () => {
    const { store, t, append } = await setup();
    await append('re-1', 1);
    for (const stream of [undefined, 're-1']) {
      const socket = await open(store, t, stream);
      let closed = 0;
      socket.ws.addEventListener('close', (e) => {
        closed = e.code;
      });
      socket.send({ type: 'subscribe', id: 's' });
      await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
      socket.send({ type: 'auth', token: await token({ store: 'someone-else' }) });
      await socket.until((m) => m.some((x) => x.type === 'error'), 'error');
      expect(
        socket.messages.find((m) => m.type === 'error'),
        String(stream),
      ).toMatchObject({
        error: { code: 'Forbidden' },
      });
      await socket.until(() => closed !== 0, 'close');
      expect(closed, String(stream)).toBe(1008);
      const seen = socket.messages.length;
      await append('re-1', 1);
      await new Promise((r) => setTimeout(r, 100));
      expect(socket.messages.length, String(stream)).toBe(seen);
    }
  });

  it('answers pings, reports malformed messages, and sends heartbeats on the alarm', async () => {
    const { store, t } = await setup();
    const socket = await open(store, t);
    socket.send({ type: 'ping', at: 42 });
    socket.ws.send('{not json');
    socket.send({ type: 'subscribe' });
    await socket.until((m) => m.filter((x) => x.type === 'error').length >= 2, 'two errors');
    expect(socket.messages).toEqual(
      expect.arrayContaining([
        { type: 'pong', at: 42 },
        expect.objectContaining({ type: 'error', error: expect.objectContaining({ code: 'Validation' }) }),
      ]),
    );
    expect(await runDurableObjectAlarm(env.SEQUENCERS.get(env.SEQUENCERS.idFromName(store)))).toBe(true);
    await socket.until((m) => m.some((x) => x.type === 'heartbeat'), 'heartbeat');
    socket.ws.close(1000);
  });
});

describe('WebSocket subscriptions of one stream (StreamDO)', () => {
  it("catch-up, caught-up, then live: exactly the stream's events, none skipped or repeated", async () => {
    const { store, t, append } = await setup();
    for (let i = 0; i < 6; i++) {
      await append('acc-1', 100);
      await append('other', 10);
    }
    const socket = await open(store, t, 'acc-1');
    await socket.until((m) => m.some((x) => x.type === 'ready'), 'ready');
    const writers = Promise.all([
      (async () => {
        for (let i = 0; i < 10; i++) await append('acc-1', 3);
      })(),
      (async () => {
        for (let i = 0; i < 10; i++) await append('other', 3);
      })(),
    ]);
    socket.send({ type: 'subscribe', id: 's' });
    await writers;
    await socket.until((m) => eventsOf(m).length >= 630, '630 events');
    await new Promise((r) => setTimeout(r, 50));
    const seen = eventsOf(socket.messages);
    expect(seen.map((e) => e.version)).toEqual(Array.from({ length: 630 }, (_, i) => i + 1));
    expect(new Set(seen.map((e) => e.stream))).toEqual(new Set(['acc-1']));
    const positions = seen.map((e) => e.position ?? 0);
    expect(positions.every((p, i) => i === 0 || p > (positions[i - 1] ?? 0))).toBe(true);
    const page = (await (
      await call(`/v1/stores/${store}/streams/acc-1/events?limit=1000`, { token: t })
    ).json()) as {
      events: Array<{ id: string }>;
    };
    expect(seen.map((e) => e.id)).toEqual(page.events.map((e) => e.id));
    const marker = socket.messages.findIndex((m) => m.type === 'caught-up');
    const before = eventsOf(socket.messages.slice(0, marker));
    expect((socket.messages[marker] as { position: number }).position).toBe(before.at(-1)?.position ?? 0);
    socket.ws.close(1000);
  });

  describe('a long catch-up of a stream, in pages of 2', () => {
    async function longStream() {
      const ctx = await setup();
      for (let i = 0; i < 4; i++) await ctx.append('acc-1', 100);
      const stub = env.STREAMS.get(env.STREAMS.idFromName(`${ctx.store}/acc-1`));
      await runInDurableObject(stub, (instance: StreamDO) => {
        instance.catchUpPage = 2;
      });
      const socket = await open(ctx.store, ctx.t, 'acc-1');
      await socket.until((m) => m.some((x) => x.type === 'ready'), 'ready');
      return { ...ctx, socket };
    }

    it('lets appends to the stream in between its pages, and still misses or repeats nothing', async () => {
      const { append, socket } = await longStream();
      socket.send({ type: 'subscribe', id: 's' });
      await socket.until((m) => eventsOf(m).length > 0, 'the first page');
      // About 200 pages to go: this append must not wait for all of them (checked below: its
      // events come in catch-up pages, before the marker, not live after it).
      await append('acc-1', 5);
      await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
      await append('acc-1', 2);
      await socket.until((m) => eventsOf(m).length >= 407, '407 events');
      await new Promise((r) => setTimeout(r, 50));
      const seen = eventsOf(socket.messages);
      expect(seen.map((e) => e.version)).toEqual(Array.from({ length: 407 }, (_, i) => i + 1));
      const marker = socket.messages.findIndex((m) => m.type === 'caught-up');
      // The five appended mid-catch-up came as catch-up pages; the two after it came live.
      expect(eventsOf(socket.messages.slice(0, marker)).length).toBe(405);
      expect(socket.messages.filter((m) => m.type === 'events' && m.events.length > 2)).toEqual([]);
      socket.ws.close(1000);
    });

    it('stops when the subscription is dropped before it is caught up', async () => {
      const { append, socket } = await longStream();
      socket.send({ type: 'subscribe', id: 's' });
      await socket.until((m) => eventsOf(m).length > 0, 'the first page');
      socket.send({ type: 'unsubscribe', id: 's' });
      socket.send({ type: 'subscribe', id: 'other', after: 399 });
      await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
      await append('acc-1', 1);
      await socket.until((m) => eventsOf(m, 'other').length >= 2, 'the live event');
      await new Promise((r) => setTimeout(r, 50));
      expect(socket.messages.filter((m) => m.type === 'caught-up')).toEqual([
        { type: 'caught-up', subscription: 'other', position: expect.any(Number) },
      ]);
      expect(eventsOf(socket.messages, 's').length).toBeLessThan(400);
      expect(eventsOf(socket.messages, 'other').map((e) => e.version)).toEqual([400, 401]);
      socket.ws.close(1000);
    });
  });

  it('resumes after a position and filters by type; prefixes and auth are enforced', async () => {
    const { store, t, append } = await setup();
    await append('acc-1', 3);
    const res = await exports.default.fetch(
      new Request(`${BASE}/v1/stores/${store}/streams/acc-1/ws`, {
        headers: {
          Upgrade: 'websocket',
          authorization: `Bearer ${await token({ store, streams: ['ord-'] })}`,
        },
      }),
    );
    expect(res.status).toBe(403);
    const socket = await open(store, undefined, 'acc-1');
    socket.send({ type: 'auth', token: await token({ store, role: 'reader', streams: ['ord-'] }) });
    await socket.until((m) => m.some((x) => x.type === 'error'), 'error');
    expect(socket.messages[0]).toMatchObject({ type: 'error', error: { code: 'Forbidden' } });

    const ok = await open(store, undefined, 'acc-1');
    ok.send({ type: 'auth', token: t });
    await ok.until((m) => m.some((x) => x.type === 'ready'), 'ready');
    ok.send({ type: 'subscribe', id: 's', after: 2 });
    ok.send({ type: 'subscribe', id: 'none', filter: { types: ['Other'] } });
    await ok.until((m) => m.filter((x) => x.type === 'caught-up').length >= 2, 'caught-up');
    await append('acc-1', 1);
    await ok.until((m) => eventsOf(m).length >= 2, '2 events');
    await new Promise((r) => setTimeout(r, 30));
    expect(eventsOf(ok.messages).map((e) => e.version)).toEqual([3, 4]);
    expect(eventsOf(ok.messages, 'none')).toEqual([]);
    expect(await runDurableObjectAlarm(env.STREAMS.get(env.STREAMS.idFromName(`${store}/acc-1`)))).toBe(true);
    await ok.until((m) => m.some((x) => x.type === 'heartbeat'), 'heartbeat');
    expect(ok.messages.find((m) => m.type === 'heartbeat')).toMatchObject({ head: 4 });
    ok.ws.close(1000);
  });
});

describe('WebSocket sockets whose token expires', () => {
  /** A token valid for one to two seconds, and a wait until it has expired. */
  async function shortLived(store: string) {
    const exp = Math.ceil(Date.now() / 1000) + 1;
    const t = await token({ store, exp });
    const expiry = async () => {
      while (Date.now() / 1000 <= exp) await new Promise((r) => setTimeout(r, 50));
    };
    return { t, expiry };
  }

  const expiredError = {
    type: 'error',
    error: { code: 'Unauthorized', message: 'token has expired' },
  };

  it('a live subscription, global or stream, gets nothing after its token expired: it is told and closed', async () => {
    const { store, append } = await setup();
    await append('exp-1', 1);
    const { t, expiry } = await shortLived(store);
    const sockets = [await open(store, t), await open(store, t, 'exp-1')];
    const codes = sockets.map(closeCode);
    for (const socket of sockets) {
      socket.send({ type: 'subscribe', id: 's' });
      await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
    }
    await append('exp-1', 1);
    for (const socket of sockets) await socket.until((m) => eventsOf(m).length >= 2, 'a live event');
    await expiry();
    await append('exp-1', 1);
    for (const [i, socket] of sockets.entries()) {
      await socket.until(() => codes[i]?.() !== 0, 'close');
      expect(codes[i]?.(), String(i)).toBe(1008);
      expect(socket.messages.at(-1), String(i)).toMatchObject(expiredError);
      expect(eventsOf(socket.messages).map((e) => e.version)).toEqual([1, 2]);
    }
  });

  it('a socket whose token expired may not subscribe, and the heartbeat closes an idle one', async () => {
    const { store, append } = await setup();
    await append('exp-1', 1);
    const { t, expiry } = await shortLived(store);
    const asking = [await open(store, t), await open(store, t, 'exp-1')];
    const idle = [await open(store, t), await open(store, t, 'exp-1')];
    const askingCodes = asking.map(closeCode);
    const idleCodes = idle.map(closeCode);
    await expiry();
    for (const [i, socket] of asking.entries()) {
      socket.send({ type: 'subscribe', id: 's' });
      await socket.until(() => askingCodes[i]?.() !== 0, 'close');
      expect(askingCodes[i]?.(), String(i)).toBe(1008);
      expect(
        socket.messages.filter((m) => m.type !== 'ready'),
        String(i),
      ).toEqual([expiredError]);
    }
    expect(await runDurableObjectAlarm(sequencerStub(store))).toBe(true);
    expect(await runDurableObjectAlarm(env.STREAMS.get(env.STREAMS.idFromName(`${store}/exp-1`)))).toBe(true);
    for (const [i, socket] of idle.entries()) {
      await socket.until(() => idleCodes[i]?.() !== 0, 'close');
      expect(idleCodes[i]?.(), String(i)).toBe(1008);
      expect(
        socket.messages.filter((m) => m.type !== 'ready'),
        String(i),
      ).toEqual([expiredError]);
    }
  });

  it('a socket that authenticates again with a fresh token keeps its subscription', async () => {
    const { store, append } = await setup();
    await append('exp-1', 1);
    const { t, expiry } = await shortLived(store);
    const sockets = [await open(store, t), await open(store, t, 'exp-1')];
    for (const socket of sockets) {
      socket.send({ type: 'subscribe', id: 's' });
      await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
      socket.send({ type: 'auth', token: await token({ store }) });
      await socket.until((m) => m.filter((x) => x.type === 'ready').length >= 2, 'ready again');
    }
    await expiry();
    await append('exp-1', 1);
    for (const socket of sockets) {
      await socket.until((m) => eventsOf(m).length >= 2, 'a live event');
      expect(socket.messages.filter((m) => m.type === 'error')).toEqual([]);
      socket.ws.close(1000);
    }
  });
});

describe('WebSocket sockets that never authenticate', () => {
  it('are closed at the second heartbeat; one that authenticates in time stays', async () => {
    const { store, append } = await setup();
    await append('na-1', 1);
    const silent = [await open(store), await open(store, undefined, 'na-1')];
    const late = [await open(store), await open(store, undefined, 'na-1')];
    const codes = [...silent, ...late].map(closeCode);
    const alarms = async () => {
      expect(await runDurableObjectAlarm(sequencerStub(store))).toBe(true);
      expect(await runDurableObjectAlarm(env.STREAMS.get(env.STREAMS.idFromName(`${store}/na-1`)))).toBe(
        true,
      );
    };
    await alarms();
    for (const socket of late) {
      socket.send({ type: 'auth', token: await token({ store }) });
      await socket.until((m) => m.some((x) => x.type === 'ready'), 'ready');
    }
    await alarms();
    for (const [i, socket] of silent.entries()) {
      await socket.until(() => codes[i]?.() !== 0, 'close');
      expect(codes[i]?.(), String(i)).toBe(1008);
      expect(socket.messages).toEqual([
        { type: 'error', error: { code: 'Unauthorized', message: 'no auth message before the heartbeat' } },
      ]);
    }
    for (const [i, socket] of late.entries()) {
      await socket.until((m) => m.some((x) => x.type === 'heartbeat'), 'heartbeat');
      expect(codes[silent.length + i]?.(), String(i)).toBe(0);
      socket.ws.close(1000);
    }
  });
});

describe('a stream subscription too large to keep', () => {
  it('is refused, and appends and the other subscriptions go on', async () => {
    const { store, t, append } = await setup();
    await append('big-1', 1);
    const socket = await open(store, t, 'big-1');
    const other = await open(store, t, 'big-1');
    other.send({ type: 'subscribe', id: 'plain' });
    await other.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
    // About 9 KB of types each: the first fits in the socket's attachment (16 KiB), two do not.
    const types = (n: number) =>
      Array.from({ length: 99 }, (_, i) => `T${n}-${i}-${'x'.repeat(85)}`).concat(['Tested']);
    socket.send({ type: 'subscribe', id: 'a', filter: { types: types(1) } });
    await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up a');
    socket.send({ type: 'subscribe', id: 'b', filter: { types: types(2) } });
    await socket.until((m) => m.some((x) => x.type === 'error'), 'the refusal');
    expect(socket.messages.find((m) => m.type === 'error')).toMatchObject({
      subscription: 'b',
      error: { code: 'Validation' },
    });
    // The stream still takes appends, and both live subscriptions hear them.
    for (let i = 0; i < 2; i++) await append('big-1', 1);
    await socket.until((m) => eventsOf(m, 'a').length >= 3, 'live events on a');
    await other.until((m) => eventsOf(m, 'plain').length >= 3, 'live events on plain');
    socket.ws.close(1000);
    other.ws.close(1000);
  });
});

describe('a global subscription replaced by one too large to keep', () => {
  it('is refused, and the one it was to replace stays live', async () => {
    const { store, t, append } = await setup();
    const socket = await open(store, t);
    socket.send({ type: 'subscribe', id: 's' });
    await socket.until((m) => m.some((x) => x.type === 'caught-up'), 'caught-up');
    // 100 stream names of 190 characters: over the socket's attachment limit (16 KiB).
    const streams = Array.from({ length: 100 }, (_, i) => `s${i}-${'x'.repeat(185)}`);
    socket.send({ type: 'subscribe', id: 's', streams });
    await socket.until((m) => m.some((x) => x.type === 'error'), 'the refusal');
    expect(socket.messages.find((m) => m.type === 'error')).toMatchObject({
      subscription: 's',
      error: { code: 'Validation' },
    });
    await append('after-1', 2);
    await socket.until((m) => eventsOf(m, 's').length >= 2, 'live events on the old subscription');
    socket.ws.close(1000);
  });
});
