import 'fake-indexeddb/auto';
import { expose } from 'comlink';
import { describe, expect, it } from 'vitest';
import { createClient } from './client.ts';
import { startWorker, workerApi } from './worker.ts';
import { WorkerCore } from './worker-core.ts';

// The page's client and the worker in one process, over a MessageChannel: the same messages
// as a dedicated worker's (comlink, and the appends' own port).
function client(dbName: string) {
  const channel = new MessageChannel();
  startWorker({}, channel.port2);
  const worker = Object.assign(channel.port1, { terminate: () => channel.port1.close() });
  return createClient({
    url: 'http://unused',
    store: 's',
    token: 't',
    sync: false,
    dbName,
    worker: worker as unknown as Worker,
  });
}

const event = { type: 'Noted', data: {} };

describe('a worker that does not listen on the append lane', () => {
  it('is sent its appends through comlink', async () => {
    // A worker exposing `workerApi` by itself, without `appendLane` (or an older script).
    const channel = new MessageChannel();
    expose(workerApi(new WorkerCore({})), channel.port2);
    const worker = Object.assign(channel.port1, { terminate: () => channel.port1.close() });
    const c = createClient({
      url: 'http://unused',
      store: 's',
      token: 't',
      sync: false,
      dbName: 'no-lane',
      worker: worker as unknown as Worker,
    });
    const [one, two] = await Promise.all([c.append('s', [event]), c.append('s', [event])]);
    expect([one.version, two.version]).toEqual([1, 2]);
    await expect(c.append('s', [event], { expectedVersion: 1 })).rejects.toMatchObject({
      code: 'WrongExpectedVersion',
    });
    expect((await c.readStream('s')).events).toHaveLength(2);
    await c.close();
  });
});

describe('close()', () => {
  it('answers an append made while it waits for the ones before it', async () => {
    const c = client('close-1');
    await c.rejections();
    const first = c.append('s', [event]);
    const closing = c.close();
    await new Promise((r) => setTimeout(r, 0));
    const second = c.append('s', [event]).then(
      (r) => `stored at version ${r.version}`,
      (e: { code?: string }) => `refused: ${e.code}`,
    );
    const hung = new Promise((r) => setTimeout(() => r('no answer'), 3000));
    expect(await Promise.race([second, hung])).toMatch(/^stored at version 2$|^refused: Closed$/);
    await closing;
    expect((await first).version).toBe(1);
    // What resolved is stored, and nothing else.
    const again = client('close-1');
    const stored = (await again.readStream('s')).events.length;
    expect(stored).toBe((await second).startsWith('stored') ? 2 : 1);
    await again.close();
  });
});
