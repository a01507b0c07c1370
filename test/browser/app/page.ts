import { createClient } from '@edgelog/client';
import type { account } from './domain.ts';

const params = new URLSearchParams(location.search);
const client = createClient({
  url: params.get('server') ?? 'http://127.0.0.1:9',
  store: params.get('store') ?? 'browser',
  token: params.get('token') ?? 'none',
  worker: () => new Worker(new URL('./worker.js', location.href), { type: 'module' }),
  deciders: {} as { account: typeof account },
  sync: params.get('sync') !== '0',
});

const seen: string[] = [];
/** The app's own view of the log, folded from the subscription: events in, withdrawals out. */
const view = new Map<string, unknown>();
const withdrawn: string[] = [];
void client.subscribe(
  {},
  (events) => {
    for (const e of events) {
      seen.push(e.id);
      view.set(e.id, e.data);
    }
  },
  (list) => {
    for (const w of list) {
      withdrawn.push(`${w.reason} ${w.id}`);
      view.delete(w.id);
    }
  },
);

/** What the tests drive through `page.evaluate`. */
const app = {
  client,
  seen,
  withdrawn,
  viewIds: () => [...view.keys()].sort(),
  /** Appends `n` single events to `stream` one after another; reports each resolved id. */
  async burst(stream: string, n: number, report: (id: string) => void) {
    for (let i = 0; i < n; i++) {
      const id = crypto.randomUUID();
      await client.append(stream, [{ id, type: 'Burst', data: { i } }]);
      report(id);
    }
  },
};
(globalThis as unknown as { app: typeof app }).app = app;
export type App = typeof app;
