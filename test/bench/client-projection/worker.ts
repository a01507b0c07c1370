import type { Transport } from '@edgelog/client/worker';
import { startWorker } from '@edgelog/client/worker';
import { defineProjection } from '@edgelog/core';
import { account } from '../../browser/app/domain.ts';

/**
 * A server that only exists in memory. `synthetic://N/items`: N confirmed `Added` events over
 * 1,000 streams; `synthetic://N/acc`: N confirmed `Deposited` events of one stream `acc`.
 */
function synthetic(total: number, shape: string): Transport {
  return {
    async push() {
      return { results: [] };
    },
    async pull(after, limit) {
      const events = [];
      for (let p = after + 1; p <= Math.min(total, after + limit); p++) {
        const id = `00000000-0000-4000-8000-${p.toString(16).padStart(12, '0')}`;
        events.push(
          shape === 'acc'
            ? {
                id,
                stream: 'acc',
                type: 'Deposited',
                schemaVersion: 1,
                data: { amount: 1 },
                metadata: {},
                version: p,
                position: p,
                recordedAt: '2026-01-01T00:00:00.000Z',
              }
            : {
                id,
                stream: `item-${p % 1000}`,
                type: 'Added',
                schemaVersion: 1,
                data: { n: p, title: 'a title of some length', done: false },
                metadata: {},
                version: Math.floor((p - 1) / 1000) + 1,
                position: p,
                recordedAt: '2026-01-01T00:00:00.000Z',
              },
        );
      }
      return { events, head: total };
    },
    live() {
      return { close() {} };
    },
  };
}

/** A keyed projection with 1,000 keys: the same shape as the edge catch-up bench's. */
const items = defineProjection<{ count: number; sum: number }>({
  name: 'items',
  version: 1,
  types: ['Added'],
  key: (e) => e.stream,
  initialState: () => ({ count: 0, sum: 0 }),
  evolve: (s, e) => ({ count: s.count + 1, sum: s.sum + (e.data as { n: number }).n }),
});

const params = new URL(self.location.href).searchParams;
startWorker({
  deciders: { account },
  projections: params.get('projections') === '1' ? [items] : [],
  snapshots: { account: { stateVersion: 1, afterReplayOf: 1000 } },
  transport: (options) => {
    const [total, shape] = options.url.replace('synthetic://', '').split('/');
    return synthetic(Number(total), shape ?? 'items');
  },
  engine: { pullLimit: Number(params.get('pull') ?? 5000) },
});
