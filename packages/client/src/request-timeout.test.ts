import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { FakeServer } from './testing/fake-server.ts';
import { HttpTransport, type Transport } from './transport.ts';
import { WorkerCore } from './worker-core.ts';

let dbs = 0;
const never = <T>() => new Promise<T>(() => undefined);
const waitFor = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 300 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};
/** Resolves to 'late' if `p` has not settled after `ms`. */
const within = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => 'settled'), new Promise((r) => setTimeout(() => r('late'), ms))]);

async function client(transport: Transport, requestTimeoutMs?: number) {
  const engine = requestTimeoutMs === undefined ? {} : { requestTimeoutMs };
  const core = new WorkerCore({ transport: () => transport, engine });
  await core.init({ url: 'http://x', store: 's', token: 't', live: false, dbName: `timeout-${++dbs}` });
  return core;
}

describe('a server that does not answer', () => {
  it('does not hold close() or going offline: the commit stays pending for the next session', async () => {
    let pushes = 0;
    const signals: AbortSignal[] = [];
    const core = await client({
      push: (_commits, signal) => {
        pushes++;
        if (signal) signals.push(signal);
        return never();
      },
      pull: async (after) => ({ events: [], head: after }),
      live: () => ({ close() {} }),
    });
    await core.append('a', [{ type: 'T', data: {} }]);
    await waitFor(() => pushes === 1, 'the push');
    core.setOnline(false);
    // The request was told to stop (fetch aborts it), and the round ended with it.
    expect(signals[0]?.aborted).toBe(true);
    await waitFor(() => !core.status().syncing, 'the round to end');
    expect(core.status().lastError?.code).toBe('Offline');
    core.setOnline(true);
    await waitFor(() => pushes === 2, 'the push after coming back online');
    expect(await within(core.close(), 2_000)).toBe('settled');
    expect(signals[1]?.aborted).toBe(true);
    expect(core.status().pending).toBe(1);
  });

  it('gives a request up after requestTimeoutMs and retries it', async () => {
    const server = new FakeServer();
    const inner = server.transport();
    let pushes = 0;
    const core = await client(
      {
        push: (commits) => (++pushes === 1 ? never() : inner.push(commits)),
        pull: (after, limit) => inner.pull(after, limit),
        live: (after, handlers) => inner.live(after, handlers),
      },
      50,
    );
    await core.append('a', [{ type: 'T', data: {} }]);
    await waitFor(
      () => core.status().pending === 0 && core.status().lastConfirmedPosition === 1,
      'the retry',
    );
    expect(pushes).toBe(2);
    expect((await server.store.readStream('a')).events).toHaveLength(1);
    await core.close();
  });
});

describe('HttpTransport', () => {
  it('hands the signal to fetch', async () => {
    const seen: Array<AbortSignal | null | undefined> = [];
    const fetchFn = (async (url: URL, init?: RequestInit) => {
      seen.push(init?.signal);
      const body = url.pathname.endsWith('/push') ? { results: [] } : { events: [], head: 0 };
      return new Response(JSON.stringify(body), { status: 200 });
    }) as typeof fetch;
    const transport = new HttpTransport('http://x', 's', async () => 't', fetchFn);
    const ctl = new AbortController();
    await transport.pull(0, 10, ctl.signal);
    await transport.push([], ctl.signal);
    expect(seen).toEqual([ctl.signal, ctl.signal]);
  });
});

describe('a link too slow for a whole batch', () => {
  it('gets smaller batches, given more time, after each timeout, and the outbox drains', async () => {
    const server = new FakeServer();
    const inner = server.transport();
    const sizes: number[] = [];
    // 3 ms per commit: 100 commits need 300 ms, and the first deadline is 40 ms.
    const slow: Transport = {
      push: async (commits) => {
        sizes.push(commits.length);
        await new Promise((r) => setTimeout(r, 3 * commits.length));
        return inner.push(commits);
      },
      pull: (after, limit) => inner.pull(after, limit),
      live: (after, handlers) => inner.live(after, handlers),
    };
    const core = new WorkerCore({
      transport: () => slow,
      engine: { requestTimeoutMs: 40, backoffBase: 1, backoffCap: 2 },
    });
    await core.init({
      url: 'http://x',
      store: 's',
      token: 't',
      live: false,
      online: false,
      dbName: `slow-${++dbs}`,
    });
    for (let i = 0; i < 100; i++) await core.append(`s-${i}`, [{ type: 'T', data: { i } }]);
    core.setOnline(true);
    await waitFor(() => core.status().pending === 0, 'the outbox to drain');
    expect(sizes[0]).toBe(100);
    expect(Math.min(...sizes)).toBeLessThan(100);
    expect((await server.store.readAll({ limit: 500 })).events).toHaveLength(100);
    await core.close();
  });
});
