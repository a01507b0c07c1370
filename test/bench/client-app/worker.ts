import type { Transport } from '@edgelog/client/worker';
import { startWorker } from '@edgelog/client/worker';
import { account } from '../../browser/app/domain.ts';

/** A server that only exists in memory: `synthetic://N` serves N confirmed events to pull. */
function synthetic(total: number): Transport {
  return {
    async push() {
      return { results: [] };
    },
    async pull(after, limit) {
      const events = [];
      for (let p = after + 1; p <= Math.min(total, after + limit); p++) {
        events.push({
          id: `00000000-0000-4000-8000-${p.toString(16).padStart(12, '0')}`,
          stream: `item-${p % 1000}`,
          type: 'Added',
          schemaVersion: 1,
          data: { n: p, title: 'a title of some length', done: false },
          metadata: {},
          version: Math.floor((p - 1) / 1000) + 1,
          position: p,
          recordedAt: '2026-01-01T00:00:00.000Z',
        });
      }
      return { events, head: total };
    },
    live() {
      return { close() {} };
    },
  };
}

startWorker({
  deciders: { account },
  transport: (options) => synthetic(Number(options.url.replace('synthetic://', ''))),
  engine: { pullLimit: Number(new URL(self.location.href).searchParams.get('pull') ?? 1000) },
});
