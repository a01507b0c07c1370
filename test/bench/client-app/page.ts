import { createClient } from '@edgelog/client';
import { openDB } from 'idb';

const event = (i: number) => ({
  type: 'Added',
  data: { n: i, title: 'a title of some length', done: false },
});
let dbs = 0;

async function rawDb() {
  return openDB(`raw-${Date.now()}-${++dbs}`, 1, {
    upgrade(db) {
      db.createObjectStore('events', { keyPath: ['stream', 'version'] });
    },
  });
}

const client = (store: string, extra: Record<string, unknown> = {}) =>
  createClient({
    url: 'http://127.0.0.1:9',
    store,
    token: 'none',
    sync: false,
    dbName: `sdk-${store}-${Date.now()}`,
    worker: () => new Worker(new URL('./worker.js', location.href), { type: 'module' }),
    ...extra,
  });

const time = async (fn: () => Promise<unknown>) => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};

/**
 * Each returns elapsed ms for the work; setup is outside the timing. The append figures first
 * do the same work `warm` times on other streams, untimed, on both sides: a new worker's code
 * is not yet compiled by the JIT (the page's raw code is, after the first round), and an app's
 * worker lives as long as the app.
 */
const bench = {
  async rawBatch(batches: number, size: number, warm = 0) {
    const db = await rawDb();
    const write = async (stream: string) => {
      for (let b = 0, v = 0; b < batches; b++) {
        const tx = db.transaction('events', 'readwrite');
        for (let i = 0; i < size; i++)
          tx.store.put({ stream, version: ++v, id: crypto.randomUUID(), ...event(v) });
        await tx.done;
      }
    };
    for (let w = 0; w < warm; w++) await write(`w${w}`);
    const ms = await time(() => write('s'));
    db.close();
    return ms;
  },
  async sdkBatch(batches: number, size: number, warm = 0) {
    const c = client('batch');
    await c.rejections();
    const write = async (stream: string) => {
      for (let b = 0; b < batches; b++)
        await c.append(
          stream,
          Array.from({ length: size }, (_, i) => event(i)),
        );
    };
    for (let w = 0; w < warm; w++) await write(`w${w}`);
    const ms = await time(() => write('s'));
    await c.close();
    return ms;
  },
  async rawConcurrent(n: number, warm = 0) {
    const db = await rawDb();
    const write = (prefix: string) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => {
          const tx = db.transaction('events', 'readwrite');
          tx.store.put({ stream: `${prefix}${i}`, version: 1, id: crypto.randomUUID(), ...event(i) });
          return tx.done;
        }),
      );
    for (let w = 0; w < warm; w++) await write(`w${w}-`);
    const ms = await time(() => write('s'));
    db.close();
    return ms;
  },
  async sdkConcurrent(n: number, warm = 0) {
    const c = client('concurrent');
    await c.rejections();
    const write = (prefix: string) =>
      Promise.all(Array.from({ length: n }, (_, i) => c.append(`${prefix}${i % 10}`, [event(i)])));
    for (let w = 0; w < warm; w++) await write(`w${w}-`);
    const ms = await time(() => write('s'));
    await c.close();
    return ms;
  },
  async rawSequential(n: number, warm = 0) {
    const db = await rawDb();
    const write = async (stream: string) => {
      for (let i = 0; i < n; i++) {
        const tx = db.transaction('events', 'readwrite');
        tx.store.put({ stream, version: i + 1, id: crypto.randomUUID(), ...event(i) });
        await tx.done;
      }
    };
    for (let w = 0; w < warm; w++) await write(`w${w}`);
    const ms = await time(() => write('s'));
    db.close();
    return ms;
  },
  async sdkSequential(n: number, warm = 0) {
    const c = client('sequential');
    await c.rejections();
    const write = async (stream: string) => {
      for (let i = 0; i < n; i++) await c.append(stream, [event(i)]);
    };
    for (let w = 0; w < warm; w++) await write(`w${w}`);
    const ms = await time(() => write('s'));
    await c.close();
    return ms;
  },
  /** `rawSequential`'s writes made by a dedicated worker (raw-worker.ts): the hop, no SDK code. */
  async hopSequential(n: number, warm = 0) {
    const w = new Worker(new URL('./raw-worker.js', location.href), { type: 'module' });
    const send = (message: unknown) =>
      new Promise((resolve) => {
        w.onmessage = resolve;
        w.postMessage(message);
      });
    await send({ open: `hop-${Date.now()}-${++dbs}` });
    const write = async (stream: string) => {
      for (let i = 0; i < n; i++)
        await send({ put: { stream, version: i + 1, id: crypto.randomUUID(), ...event(i) } });
    };
    for (let x = 0; x < warm; x++) await write(`w${x}`);
    const ms = await time(() => write('s'));
    w.terminate();
    return ms;
  },
  /** Writes a `total`-event stream in batches of `batch`, then times its load. */
  async rawLoad(total: number) {
    const db = await rawDb();
    for (let b = 0; b < total / 100; b++) {
      const tx = db.transaction('events', 'readwrite');
      for (let i = 1; i <= 100; i++)
        tx.store.put({ stream: 'big', version: b * 100 + i, id: crypto.randomUUID(), ...event(i) });
      await tx.done;
    }
    let n = 0;
    const ms = await time(async () => {
      n = (await db.getAll('events', IDBKeyRange.bound(['big', 0], ['big', Number.MAX_SAFE_INTEGER]))).length;
    });
    db.close();
    if (n !== total) throw new Error(`raw load read ${n}`);
    return ms;
  },
  async sdkLoad(total: number, batch: number, how: 'read' | 'execute') {
    const c = client(`load-${batch}`);
    await c.rejections();
    for (let b = 0; b < total / batch; b++) {
      await c.append(
        'acc',
        Array.from({ length: batch }, () => ({ type: 'Deposited', data: { amount: 1 } })),
      );
    }
    let n = 0;
    const ms = await time(async () => {
      if (how === 'execute') {
        const r = await c.execute('account', 'acc', { kind: 'withdraw', amount: total });
        n = r.version - 1;
      } else {
        // Pages of 5,000 until the stream's version (every answer carries it): 2 pages, as the
        // row says; stopping at a short page instead asked a third, empty one.
        for (let from = 1; ; from += 5000) {
          const r = await c.readStream('acc', { from, limit: 5000 });
          n += r.events.length;
          if (r.events.length < 5000 || from + 5000 > r.version) break;
        }
      }
    });
    await c.close();
    if (n !== total) throw new Error(`sdk load read ${n}`);
    return ms;
  },
  /**
   * Writes a `total`-event stream by single appends and syncs it (an in-memory server in the
   * worker), waits until the syncing tab has merged the settled records (their count stops
   * falling), then times `execute` on it. Returns [ms, records left].
   */
  async sdkLoadSynced(total: number) {
    const dbName = `synced-${Date.now()}`;
    const c = createClient({
      url: 'fake://',
      store: 'synced',
      token: 'none',
      live: false,
      dbName,
      worker: () => new Worker(new URL('./worker.js', location.href), { type: 'module' }),
    });
    await c.rejections();
    for (let i = 0; i < total; i++) await c.append('acc', [{ type: 'Deposited', data: { amount: 1 } }]);
    await new Promise<void>((resolve) => {
      c.status.subscribe((s) => {
        if (s.pending === 0 && s.lastConfirmedPosition >= total) resolve();
      });
    });
    const db = await openDB(dbName);
    let records = await db.count('log');
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const now = await db.count('log');
      if (now === records) break;
      records = now;
    }
    db.close();
    let n = 0;
    const ms = await time(async () => {
      const r = await c.execute('account', 'acc', { kind: 'withdraw', amount: total });
      n = r.version - 1;
    });
    await c.close();
    if (n !== total) throw new Error(`sdk load read ${n}`);
    return [ms, records];
  },
  /** A cold client pulls `total` confirmed events (an in-memory server in the worker, no network). */
  async sdkPull(total: number, pull: number) {
    const start = performance.now();
    const c = createClient({
      url: `synthetic://${total}`,
      store: 'pull',
      token: 'none',
      live: false,
      dbName: `pull-${Date.now()}`,
      worker: () => new Worker(new URL(`./worker.js?pull=${pull}`, location.href), { type: 'module' }),
    });
    await new Promise<void>((resolve) => {
      c.status.subscribe((s) => {
        if (s.lastConfirmedPosition >= total) resolve();
      });
    });
    const ms = performance.now() - start;
    const head = (await c.readAll({ after: total - 1 })).events.length;
    await c.close();
    if (head !== 1) throw new Error('pull incomplete');
    return ms;
  },
};
(globalThis as unknown as { bench: typeof bench }).bench = bench;
