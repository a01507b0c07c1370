import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { openLogDb } from './db.ts';
import { defaultClientLimits } from './local-event-store.ts';
import { ProjectionRunner } from './projections.ts';
import { SyncEngine } from './sync-engine.ts';
import { SyncStore } from './sync-store.ts';
import { HttpTransport, type Transport } from './transport.ts';

type FakeSocket = {
  onopen?: () => void;
  onmessage?: (m: { data: string }) => void;
  onclose?: (ev: { code: number }) => void;
  closed: boolean;
};

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A transport whose sockets the test drives; `asked` records each token request's `refresh`. */
function setup(silenceMs: number) {
  const sockets: FakeSocket[] = [];
  const asked: boolean[] = [];
  const transport = new HttpTransport(
    'http://edge.test',
    's',
    async (refresh) => {
      asked.push(refresh);
      return 't';
    },
    fetch,
    () => {
      const socket: FakeSocket = { closed: false };
      Object.assign(socket, { send: () => undefined, close: () => (socket.closed = true) });
      sockets.push(socket);
      return socket as never;
    },
    silenceMs,
  );
  const open = async () => {
    const ends: unknown[] = [];
    const conn = transport.live(0, {
      onEvents: () => undefined,
      onHead: () => undefined,
      onClose: (r) => ends.push(r),
    });
    const before = sockets.length;
    await until(() => sockets.length > before, 'the socket');
    const socket = sockets.at(-1)!;
    socket.onopen?.();
    const send = (m: object) => socket.onmessage?.({ data: JSON.stringify(m) });
    return { conn, socket, ends, send };
  };
  return { open, asked };
}

describe('a live connection', () => {
  it('that hears nothing for the silence limit is closed and reported ended', async () => {
    const { open } = setup(60);
    const { socket, ends } = await open();
    await sleep(150);
    expect(socket.closed).toBe(true);
    expect(ends).toHaveLength(1);
    expect(String(ends[0])).toContain('no message from the server');
  });

  it('stays open while heartbeats keep coming', async () => {
    const { open } = setup(60);
    const { conn, socket, ends, send } = await open();
    for (let i = 0; i < 8; i++) {
      await sleep(25);
      send({ type: 'heartbeat', head: 0 });
    }
    expect(socket.closed).toBe(false);
    expect(ends).toEqual([]);
    conn.close();
    expect(ends).toEqual(['closed']);
    // The closed connection's watchdog is gone: nothing more is reported.
    await sleep(100);
    expect(ends).toEqual(['closed']);
  });

  it('asks for a new token after the server refused one, and not otherwise', async () => {
    const { open, asked } = setup(10_000);
    const first = await open();
    first.send({ type: 'error', error: { code: 'Unauthorized', message: 'token has expired' } });
    expect(first.socket.closed).toBe(true);
    const second = await open();
    second.socket.onclose?.({ code: 1006 });
    const third = await open();
    third.socket.onclose?.({ code: 1008 });
    const fourth = await open();
    fourth.conn.close();
    expect(asked).toEqual([false, true, false, true]);
  });
});

describe('a live connection the server refuses at once, while HTTP works', () => {
  it('reconnects with its own backoff, not at the pace of the successful rounds', async () => {
    const db = await openLogDb(`live-backoff-${Date.now()}`);
    const sync = new SyncStore(db, {
      projections: new ProjectionRunner([]),
      deciders: {},
      onWrite: () => undefined,
    });
    let opened = 0;
    const transport: Transport = {
      push: async () => ({ results: [] }),
      pull: async (after) => ({ events: [], head: after }),
      live: (_after, handlers) => {
        opened++;
        setTimeout(() => handlers.onClose(new Error('Unauthorized')), 1);
        return { close() {} };
      },
    };
    // The largest delay of each backoff step: 249, 499, 999 ms, ...
    const engine = new SyncEngine(sync, transport, { limits: defaultClientLimits, random: () => 0.999 });
    await engine.start();
    await sleep(1_200);
    await engine.stop();
    db.close();
    // At 0, ~250 and ~750 ms (a fourth at ~1,750): before, a reconnect every ~250 ms or less.
    expect(opened).toBeGreaterThanOrEqual(2);
    expect(opened).toBeLessThanOrEqual(3);
  });
});
