import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeServer } from './testing/fake-server.ts';
import { wireEvent } from './testing/wire-event.ts';
import { HttpTransport, type LiveHandlers } from './transport.ts';
import type { WireEvent } from './wire.ts';
import { WorkerCore } from './worker-core.ts';

const open: WorkerCore[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

async function until(check: () => boolean | Promise<boolean>, what: string) {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A client on a fake server whose live messages the test writes itself (a subscription that leaves events out). */
async function scripted() {
  const server = new FakeServer();
  let live: LiveHandlers | undefined;
  let pulls = 0;
  const core = new WorkerCore({
    transport: () => ({
      push: (c) => server.push(c),
      pull: (after, limit) => {
        pulls++;
        return server.pull(after, limit);
      },
      live: (_after, handlers) => {
        live = handlers;
        return { close: () => undefined };
      },
    }),
    engine: { backoffBase: 1, backoffCap: 5 },
  });
  open.push(core);
  const write = async (stream: string) => {
    await server.store.append(stream, [{ id: crypto.randomUUID(), type: 'T', data: {} }]);
  };
  const event = async (position: number): Promise<WireEvent> =>
    (await server.pull(position - 1, 1)).events[0]!;
  const positions = async () =>
    (await core.readAll({ limit: 100 })).events.map((e) => e.serverPosition).sort((a, b) => a! - b!);
  return {
    core,
    write,
    event,
    positions,
    live: () => live!,
    pulls: () => pulls,
    init: () =>
      core.init({ url: 'http://fake', store: 's', dbName: `live-${crypto.randomUUID()}`, token: 't' }),
  };
}

describe('live messages that say what they cover', () => {
  it('move the cursor over what the subscription left out, without a pull', async () => {
    const c = await scripted();
    for (const s of ['a', 'b', 'a', 'b']) await c.write(s);
    await c.init();
    await until(() => c.core.status().live && c.core.status().lastConfirmedPosition === 4, 'live at 4');
    const pulls = c.pulls();
    await c.write('b'); // 5: not for this subscription
    await c.write('a'); // 6
    c.live().onEvents([await c.event(6)], { after: 4, coveredTo: 6 });
    await until(() => c.core.status().lastConfirmedPosition === 6, 'cursor at 6');
    await c.write('b'); // 7
    await c.write('a'); // 8
    await c.write('b'); // 9
    c.live().onEvents([await c.event(8)], { after: 6, coveredTo: 9 });
    await until(() => c.core.status().lastConfirmedPosition === 9, 'cursor at 9');
    expect(await c.positions()).toEqual([1, 2, 3, 4, 6, 8]);
    expect(c.pulls()).toBe(pulls);
  });

  it('reordered or repeated, never move the cursor over an event they did not bring', async () => {
    const c = await scripted();
    for (const s of ['a', 'b', 'a', 'b']) await c.write(s);
    await c.init();
    await until(() => c.core.status().live && c.core.status().lastConfirmedPosition === 4, 'live at 4');
    for (const s of ['a', 'b', 'a']) await c.write(s); // 5, 6 (not for it), 7
    const first = { after: 4, coveredTo: 6 };
    const second = { after: 6, coveredTo: 7 };
    // The second message arrives first: it does not follow the cursor (4), so it moves
    // nothing over 5; then the first, twice.
    c.live().onEvents([await c.event(7)], second);
    c.live().onEvents([await c.event(5)], first);
    c.live().onEvents([await c.event(5)], first);
    await until(() => c.core.status().lastConfirmedPosition === 7, 'cursor at 7');
    const positions = await c.positions();
    expect(positions).toContain(5);
    expect(positions).toContain(7);
    expect(new Set(positions).size).toBe(positions.length);
  });
});

describe('the HTTP transport passes a live message on', () => {
  /** Opens a live connection on a socket the test writes the server's messages to. */
  async function connect() {
    const got: Array<[number[], unknown]> = [];
    let socket: { onopen?: () => void; onmessage?: (m: { data: string }) => void } | undefined;
    const transport = new HttpTransport(
      'http://edge.test',
      's',
      async () => 't',
      fetch,
      () => {
        socket = { send: () => undefined, close: () => undefined } as never;
        return socket as never;
      },
    );
    transport.live(0, {
      onEvents: (events, cover) => got.push([events.map((e) => e.position!), cover]),
      onHead: () => undefined,
      onClose: () => undefined,
    });
    await until(() => socket !== undefined, 'the socket');
    socket!.onopen?.();
    const message = (m: object) =>
      socket!.onmessage?.({ data: JSON.stringify({ type: 'events', subscription: 'all', ...m }) });
    return { got, message };
  }
  const at = (position: number) => wireEvent(position);

  it('with its coverage only when the server says its scope left events out', async () => {
    const { got, message } = await connect();
    // A message cut short on the way keeps the coverage of the whole: without `filtered` it
    // is checked by its positions, never trusted over its gap.
    message({ events: [at(1), at(2)], after: 0, coveredTo: 4 });
    message({ events: [at(7)], after: 4, coveredTo: 9, filtered: true });
    message({ events: [at(10)] });
    expect(got).toEqual([
      [[1, 2], undefined],
      [[7], { after: 4, coveredTo: 9 }],
      [[10], undefined],
    ]);
  });
});
