import 'fake-indexeddb/auto';
import { randomId } from '@edgelog/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LANE } from './lane.ts';
import { workerApi } from './worker.ts';
import { WorkerCore } from './worker-core.ts';

// The page sends appends as `[LANE, id, text]` beside comlink's messages on the worker's
// channel (client.ts); these are the worker's answers, through a real MessageChannel.
const open: Array<{ close(): Promise<unknown>; port: MessagePort }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    o.port.close();
    await o.close();
  }
});

let n = 0;
async function lane(setup: ConstructorParameters<typeof WorkerCore>[0] = {}) {
  const api = workerApi(new WorkerCore(setup));
  await api.init({ url: 'http://unused', store: 's', dbName: `lane-${++n}`, sync: false });
  const channel = new MessageChannel();
  api.appendLane(channel.port2);
  open.push({ close: api.close, port: channel.port1 });
  let id = 0;
  const send = (text: string) =>
    new Promise<unknown[]>((resolve) => {
      const mine = ++id;
      channel.port1.onmessage = (m: MessageEvent<unknown[]>) => {
        if (m.data[0] === LANE && m.data[1] === mine) resolve(m.data.slice(1));
      };
      channel.port1.postMessage([LANE, mine, text]);
    });
  return { api, send, port: channel.port1 };
}

const event = (data: unknown, id?: string) => ({ type: 'Added', data, ...(id ? { id } : {}) });

describe('the append lane', () => {
  it('answers each append of a message on its own: one refused does not sink the others', async () => {
    const { api, send } = await lane();
    const [, results] = await send(
      JSON.stringify([
        ['a', [event(1)], {}],
        ['a', [{ type: '$bad', data: 1 }], {}],
        ['a', [event(2)], { expectedVersion: 1 }],
      ]),
    );
    expect(results).toMatchObject([
      { ok: { version: 1 } },
      { error: { code: 'Validation' } },
      { ok: { version: 2 } },
    ]);
    expect(JSON.parse((await api.readStream('a')).events)).toHaveLength(2);
  });

  it('answers a message that is not JSON with an error, and writes nothing', async () => {
    const { api, send } = await lane();
    const [, results, error] = await send('[["a", [');
    expect(results).toBeUndefined();
    expect(error).toMatchObject({ message: expect.any(String) });
    expect(await api.readAll()).toMatchObject({ events: '[]' });
  });

  it('refuses an event over the size limit, and an append over the request limit, writing nothing', async () => {
    const { api, send } = await lane();
    const bare = JSON.stringify(event('')).length;
    // Under 64 KiB as ASCII; with two-byte characters the same text is over.
    const [, wide] = await send(JSON.stringify([['a', [event('é'.repeat(40_000))], {}]]));
    expect(wide).toMatchObject([{ error: { code: 'PayloadTooLarge' } }]);
    const [, fits] = await send(JSON.stringify([['a', [event('x'.repeat(64 * 1024 - 100 - bare))], {}]]));
    expect(fits).toMatchObject([{ ok: { version: 1 } }]);
    // 1,000 events of 5 KB: each fits, the append (5 MB) is over the 4 MiB a push may carry.
    const many = Array.from({ length: 1000 }, (_, i) => event(`${i}`.padEnd(5000, 'y')));
    const [, tooMany] = await send(JSON.stringify([['a', many, {}]]));
    expect(tooMany).toMatchObject([{ error: { code: 'PayloadTooLarge' } }]);
    expect(JSON.parse((await api.readStream('a')).events)).toHaveLength(1);
  });

  it('bounds sizes by the text only on the lane: other callers are measured', async () => {
    const { api } = await lane();
    // 21,500 characters of text, 94,600 bytes once parsed and written again (1E20 is 21 digits).
    const text = JSON.stringify([['a', [{ type: 'Added', data: [] }], {}]]).replace(
      '[]',
      `[${Array(4300).fill('1E20').join(',')}]`,
    );
    expect(text.length * 3).toBeLessThan(64 * 1024);
    expect(await api.appendMany(text)).toMatchObject([{ error: { code: 'PayloadTooLarge' } }]);
    // The direct call takes no bound from its caller.
    const big = event('x'.repeat(70_000));
    const direct = (api.append as (...a: unknown[]) => Promise<unknown>)('a', [big], {}, 0);
    await expect(direct).rejects.toMatchObject({ code: 'PayloadTooLarge' });
    expect(JSON.parse((await api.readAll()).events)).toEqual([]);
  });

  it('takes only the expected version from the options: an app-given id is always checked', async () => {
    const { api, send } = await lane();
    const id = randomId();
    await send(JSON.stringify([['a', [event(1, id)], {}]]));
    // `freshIds` would skip the id lookup and store the event twice.
    const [, again] = await send(JSON.stringify([['a', [event(1, id)], { freshIds: true }]]));
    expect(again).toMatchObject([{ ok: { version: 1, commitId: '' } }]);
    expect(JSON.parse((await api.readStream('a')).events)).toHaveLength(1);
  });
  it('leaves arrays without its tag alone: the app may post its own on the worker', async () => {
    const { api, send, port } = await lane();
    const heard: unknown[] = [];
    port.addEventListener('message', (m) => heard.push(m.data));
    port.postMessage([1, JSON.stringify([['a', [event(1)], {}]])]);
    const [, results] = await send(JSON.stringify([['a', [event(2)], {}]]));
    expect(results).toMatchObject([{ ok: { version: 1 } }]);
    expect(JSON.parse((await api.readStream('a')).events)).toMatchObject([{ data: 2 }]);
    expect(heard).toHaveLength(1);
  });

  it('answers every append when an error cannot be copied: the error without its details', async () => {
    // An app's validator may throw an error with anything in its details.
    const registry = {
      validate(e: { data: unknown }) {
        if (e.data === 'bad')
          throw Object.assign(new Error('no'), { code: 'Validation', details: { f() {} } });
        return { data: e.data, schemaVersion: 1 };
      },
      upcast: <T>(e: T) => e,
    };
    const { api, send } = await lane({ registry } as never);
    const [, results] = await send(
      JSON.stringify([
        ['a', [event(1)], {}],
        ['a', [event('bad')], {}],
      ]),
    );
    expect(results).toEqual([
      { ok: expect.objectContaining({ version: 1 }) },
      { error: { code: 'Validation', message: 'no' } },
    ]);
    expect(JSON.parse((await api.readStream('a')).events)).toHaveLength(1);
  });
});
