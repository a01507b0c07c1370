import type { Transport } from '@edgelog/client/worker';

/**
 * A server that only exists in memory, for the client benchmarks: it serves `total` confirmed
 * events to pull. `items`: `Added` events over 1,000 streams; `acc`: `Deposited` events of one
 * stream `acc`. Pushes are answered with nothing, the live channel is silent.
 */
export function synthetic(total: number, shape: 'items' | 'acc' = 'items'): Transport {
  return {
    async push() {
      return { results: [] };
    },
    async pull(after, limit) {
      const events = [];
      for (let p = after + 1; p <= Math.min(total, after + limit); p++) {
        const common = {
          id: `00000000-0000-4000-8000-${p.toString(16).padStart(12, '0')}`,
          schemaVersion: 1,
          metadata: {},
          position: p,
          recordedAt: '2026-01-01T00:00:00.000Z',
        };
        events.push(
          shape === 'acc'
            ? { ...common, stream: 'acc', type: 'Deposited', data: { amount: 1 }, version: p }
            : {
                ...common,
                stream: `item-${p % 1000}`,
                type: 'Added',
                data: { n: p, title: 'a title of some length', done: false },
                version: Math.floor((p - 1) / 1000) + 1,
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
