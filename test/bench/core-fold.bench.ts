// Core's pure parts, in Node: the reference store's append path and the projection fold that
// both the browser and the edge run. Figures are medians of 7 rounds.

import type { EventEnvelope } from '@edgelog/core';
import { defineProjection, InMemoryEventStore, keysOf, projectEvents } from '@edgelog/core';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rounds = 7;

async function appendRate(batch: number, total: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const store = new InMemoryEventStore();
    const start = performance.now();
    for (let i = 0; i < total / batch; i++) {
      await store.append(
        `s-${i % 50}`,
        Array.from({ length: batch }, (_, j) => ({ id: crypto.randomUUID(), type: 'Added', data: { n: j } })),
      );
    }
    times.push(performance.now() - start);
  }
  return total / (median(times) / 1000);
}

const stock = defineProjection<{ qty: number }>({
  name: 'stock',
  version: 1,
  key: (e) => (e.data as { sku: string }).sku,
  initialState: () => ({ qty: 0 }),
  evolve: (s, e) => ({ qty: s.qty + (e.data as { qty: number }).qty }),
});

function foldRate(total: number, page: number): number {
  const events: EventEnvelope[] = Array.from({ length: total }, (_, i) => ({
    id: String(i),
    stream: `order-${i % 1000}`,
    type: 'Reserved',
    schemaVersion: 1,
    data: { sku: `sku-${i % 500}`, qty: 1 },
    metadata: {},
    version: 1,
    position: i + 1,
  }));
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const rows = new Map<string, { qty: number }>();
    const start = performance.now();
    for (let i = 0; i < total; i += page) {
      const batch = events.slice(i, i + page);
      const current = new Map<string, { qty: number }>();
      for (const k of keysOf(stock, batch)) if (rows.has(k)) current.set(k, rows.get(k)!);
      for (const [k, v] of projectEvents(stock, batch, current)) if (v) rows.set(k, v);
    }
    times.push(performance.now() - start);
  }
  return total / (median(times) / 1000);
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const a1 = await appendRate(1, 20_000);
const a100 = await appendRate(100, 100_000);
const fold = foldRate(100_000, 500);
console.log(`## Core (Node, in-memory): \`test/bench/core-fold.bench.ts\`

| what | events/s (median of ${rounds}) |
| --- | ---: |
| InMemoryEventStore append, 1 event per append | ${fmt(a1)} |
| InMemoryEventStore append, 100 events per append | ${fmt(a100)} |
| projection fold (keysOf + projectEvents), pages of 500, 100,000 events | ${fmt(fold)} |

The in-memory store is the test oracle, not a product store; these figures bound what the
pure parts cost inside the browser and edge stores.`);
