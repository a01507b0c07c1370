import { type Client, createClient } from '@edgelog/client';

let dbs = 0;
const open = (url: string, query: string) =>
  createClient({
    url,
    store: 'bench',
    token: 'none',
    live: false,
    dbName: `proj-${Date.now()}-${++dbs}`,
    worker: () => new Worker(new URL(`./worker.js?${query}`, location.href), { type: 'module' }),
  });

const caughtUp = (c: Client, total: number) =>
  new Promise<void>((resolve) => {
    c.status.subscribe((s) => {
      if (s.lastConfirmedPosition >= total) resolve();
    });
  });

/** Each returns elapsed ms for the work; setup is outside the timing. */
const bench = {
  /** A cold client pulls `total` events, with or without the keyed projection folding them. */
  async pull(total: number, projections: boolean) {
    const start = performance.now();
    const c = open(`synthetic://${total}/items`, `projections=${projections ? 1 : 0}`);
    await caughtUp(c, total);
    const ms = performance.now() - start;
    if (projections) {
      const [status] = await c.projectionStatus();
      const row = await c.readProjection<{ count: number }>('items', 'item-1');
      if (!status || status.checkpoint < status.head || row?.count !== total / 1000)
        throw new Error(`projection not caught up: ${JSON.stringify({ status, row })}`);
    }
    await c.close();
    return ms;
  },
  /**
   * Loads a `total`-event aggregate (confirmed, pulled) for a command: `cold` is the first
   * load (a full replay, which stores a snapshot); otherwise the median of later loads, from
   * the snapshot plus the tail. Each time includes the decide and the local append.
   */
  async aggregate(total: number, cold: boolean) {
    const c = open(`synthetic://${total}/acc`, 'projections=0');
    await caughtUp(c, total);
    const run = async () => {
      const start = performance.now();
      await c.execute('account', 'acc', { kind: 'deposit', amount: 1 });
      return performance.now() - start;
    };
    const first = await run();
    const later = [];
    for (let i = 0; i < 5; i++) later.push(await run());
    await c.close();
    return cold ? first : later.sort((a, b) => a - b)[2]!;
  },
};
(globalThis as unknown as { bench: typeof bench }).bench = bench;
