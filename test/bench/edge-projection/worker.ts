// The bench's Worker: the edgelog server with one keyed projection (stock per sku).
import { defineProjection } from '@edgelog/core';
import { configureEdge } from '../../../packages/server/src/config.ts';

type Reserved = { sku: string; qty: number };

configureEdge({
  projections: [
    defineProjection<{ reserved: number; events: number }>({
      name: 'stock',
      version: 1,
      types: ['Reserved'],
      key: (e) => (e.data as Reserved).sku,
      initialState: () => ({ reserved: 0, events: 0 }),
      evolve: (s, e) => ({ reserved: s.reserved + (e.data as Reserved).qty, events: s.events + 1 }),
    }),
  ],
});

export { default, ProjectionDO, SequencerDO, StreamDO } from '../../../packages/server/src/worker.ts';
