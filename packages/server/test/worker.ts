// The Worker the server's tests run: the real one, configured with test projections.
import { defineProjection } from '@edgelog/core';
import { configureEdge } from '../src/config.ts';

type Added = { sku: string; qty: number };

const totalsV1 = defineProjection<{ qty: number }>({
  name: 'totals',
  version: 1,
  types: ['Added'],
  key: (e) => (e.data as Added).sku,
  initialState: () => ({ qty: 0 }),
  evolve: (s, e) => ({ qty: s.qty + (e.data as Added).qty }),
});

const totalsV2 = defineProjection<{ qty: number; events: number }>({
  name: 'totals',
  version: 2,
  types: ['Added'],
  key: (e) => (e.data as Added).sku,
  initialState: () => ({ qty: 0, events: 0 }),
  evolve: (s, e) => {
    const { qty } = e.data as Added;
    if (qty < 0) throw new Error('negative quantity');
    return { qty: s.qty + qty, events: s.events + 1 };
  },
});

configureEdge({ projections: [totalsV1, totalsV2] });

export { default, ProjectionDO, SequencerDO, StreamDO } from '../src/worker.ts';
