import { startWorker } from '@edgelog/client/worker';
import { defineProjection } from '@edgelog/core';
import { account } from '../../browser/app/domain.ts';
import { synthetic } from '../synthetic-transport.ts';

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
    return synthetic(Number(total), shape === 'acc' ? 'acc' : 'items');
  },
  engine: { pullLimit: Number(params.get('pull') ?? 5000) },
});
