// The scan budget of global reads: a sparse filter answers pages of bounded work, and a reader
// that follows `scannedTo` gets every match once, in position order.
import { runInDurableObject } from 'cloudflare:test';
import { defaultLimits, type EventEnvelope, type ServerMessage } from '@edgelog/core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GlobalPage, GlobalReadScope, SequencerDO } from '../src/sequencer-do.ts';
import { appendTo, call, freshStore, newEvent, sequencerStub, token } from './helpers.ts';
import { eventsOf, open } from './sockets.ts';

const BUDGET = defaultLimits.maxScanPerRead;

interface Page {
  events: EventEnvelope[];
  head: number;
  scannedTo: number;
}

/** Reads from `after` to the head through `read`, checking every page against the budget. */
async function follow(read: (after: number) => Promise<Page>, limit: number, budget: number, after = 0) {
  const seen: EventEnvelope[] = [];
  const pages: Page[] = [];
  for (;;) {
    const page = await read(after);
    pages.push(page);
    expect(page.events.length).toBeLessThanOrEqual(limit);
    expect(page.scannedTo).toBeGreaterThanOrEqual(after);
    expect(page.scannedTo - after).toBeLessThanOrEqual(Math.max(limit, budget));
    for (const e of page.events) expect(e.position! > after && e.position! <= page.scannedTo).toBe(true);
    seen.push(...page.events);
    if (page.scannedTo >= page.head) return { seen, pages };
    expect(page.scannedTo).toBeGreaterThan(after);
    after = page.scannedTo;
  }
}

describe('a sparse filter over a log much larger than the scan budget', () => {
  // One log for the file (building it is the slow part): 5 hits among 2.5 budgets of noise.
  const store = freshStore('scan');
  let t = '';
  let head = 0;
  const hits: Array<{ id: string; position: number }> = [];
  const append = async (stream: string, events: ReturnType<typeof newEvent>[]) => {
    const res = await appendTo(store, t)(stream, events);
    expect(res.status).toBe(200);
    return ((await res.json()) as { positions: number[] }).positions;
  };
  const noise = async (n: number) => {
    for (let i = 0; i < n; i += 1000)
      head = (
        await append(
          `noise-${i % 3}`,
          Array.from({ length: 1000 }, () => newEvent('Noise')),
        )
      ).at(-1)!;
  };
  const hit = async () => {
    const e = newEvent('Hit');
    const [position] = await append('hit-1', [e]);
    hits.push({ id: e.id, position: position! });
    head = position!;
  };

  beforeAll(async () => {
    t = await token({ store });
    await hit();
    await noise(BUDGET + 2000);
    await hit();
    await hit();
    await noise(BUDGET);
    await hit();
    await noise(BUDGET / 2);
    await hit();
  }, 120_000);

  const readAll = (query: string) => async (after: number) => {
    const res = await call(`/v1/stores/${store}/events?after=${after}&${query}`, { token: t });
    expect(res.status).toBe(200);
    return (await res.json()) as Page;
  };

  it('answers pages of at most the budget and, followed, every match once in order', async () => {
    expect(head).toBeGreaterThan(2 * BUDGET);
    for (const query of ['types=Hit', 'streamPrefix=hit-', 'streamPrefix=hit-&types=Hit,Other'])
      for (const limit of [1, 2, 500]) {
        const { seen, pages } = await follow(readAll(`${query}&limit=${limit}`), limit, BUDGET);
        expect(seen.map((e) => [e.id, e.position])).toEqual(hits.map((h) => [h.id, h.position]));
        // The budget cut the scan: short pages (by the old rule, the end) well before the head.
        expect(pages.length).toBeGreaterThanOrEqual(3);
        expect(pages.some((p) => p.events.length < limit && p.scannedTo < p.head)).toBe(true);
        expect(pages.every((p) => p.head === head)).toBe(true);
      }
  });

  it('an empty page still moves the cursor by the whole budget', async () => {
    const page = await readAll('types=Hit&limit=500')(hits[0]!.position);
    // `filtered`: the read left events out, so its positions have gaps.
    expect(page).toEqual({ events: [], head, scannedTo: hits[0]!.position + BUDGET, filtered: true });
  });

  it('an unfiltered page is unchanged: full up to its last event, short up to the head', async () => {
    const full = await readAll('limit=500')(100);
    expect(full.events.map((e) => e.position)).toEqual(Array.from({ length: 500 }, (_, i) => 101 + i));
    expect(full.scannedTo).toBe(600);
    const tail = await readAll('limit=500')(head - 3);
    expect(tail.events.map((e) => e.position)).toEqual([head - 2, head - 1, head]);
    expect(tail.scannedTo).toBe(head);
    expect(await readAll('limit=5')(head + 7)).toEqual({ events: [], head, scannedTo: head + 7 });
  });

  it("a stream-limited token's pull is filtered to its prefixes under the same budget", async () => {
    const limited = await token({ store, role: 'reader', streams: ['hit-'] });
    const pull = async (after: number) => {
      const res = await call(`/v1/stores/${store}/sync/pull?after=${after}&limit=500`, { token: limited });
      expect(res.status).toBe(200);
      return (await res.json()) as Page;
    };
    const { seen, pages } = await follow(pull, 500, BUDGET);
    expect(seen.map((e) => e.id)).toEqual(hits.map((h) => h.id));
    expect(pages.length).toBeGreaterThanOrEqual(3);
    for (const p of pages) expect(p).toHaveProperty('filtered', true);
  });

  it('a filtered WebSocket subscription catches up in budgeted pages, reaches caught-up, then gets live events', async () => {
    // Record every page the catch-up reads, to see that each stayed within the budget.
    const scans: Array<{ after: number; scannedTo: number }> = [];
    await runInDurableObject(sequencerStub(store), (instance: SequencerDO) => {
      const readAll = instance.readAll.bind(instance);
      instance.readAll = (after: number, limit: number, scope: GlobalReadScope, maxScan?: number) => {
        const page: GlobalPage = readAll(after, limit, scope, maxScan);
        scans.push({ after, scannedTo: page.scannedTo });
        return page;
      };
    });
    const socket = await open(store, t);
    await socket.until((m) => m.some((x) => x.type === 'ready'), 'ready');
    socket.send({ type: 'subscribe', id: 'hits', filter: { types: ['Hit'] } });
    socket.send({ type: 'subscribe', id: 'prefix', filter: { streamPrefix: 'hit-' } });
    const caughtUp = (id: string) => (m: ServerMessage) => m.type === 'caught-up' && m.subscription === id;
    await socket.until((m) => m.some(caughtUp('hits')) && m.some(caughtUp('prefix')), 'caught-up');
    for (const id of ['hits', 'prefix']) {
      const marker = socket.messages.find(caughtUp(id));
      expect(marker).toEqual({ type: 'caught-up', subscription: id, position: head });
      expect(eventsOf(socket.messages, id).map((e) => e.id)).toEqual(hits.map((h) => h.id));
    }
    expect(scans.length).toBeGreaterThanOrEqual(6);
    for (const s of scans) expect(s.scannedTo - s.after).toBeLessThanOrEqual(BUDGET);

    await noise(1000);
    await hit();
    await socket.until((m) => eventsOf(m, 'hits').length > 5 && eventsOf(m, 'prefix').length > 5, 'live');
    await new Promise((r) => setTimeout(r, 50));
    for (const id of ['hits', 'prefix'])
      expect(eventsOf(socket.messages, id).map((e) => e.position)).toEqual(hits.map((h) => h.position));
    // Each events message holds exactly the matches in (`after`, `coveredTo`], and its `after`
    // is the previous message's `coveredTo`: a reader can chain them over the filter's gaps.
    for (const id of ['hits', 'prefix']) {
      let covered = 0;
      for (const m of socket.messages) {
        if (m.type !== 'events' || m.subscription !== id) continue;
        expect(m.after).toBe(covered);
        const to = m.coveredTo ?? -1;
        expect(m.filtered).toBe(m.events.length < to - covered ? true : undefined);
        expect(m.events.map((e) => e.position)).toEqual(
          hits.filter((h) => h.position > covered && h.position <= to).map((h) => h.position),
        );
        covered = to;
      }
      expect(covered).toBe(hits.at(-1)!.position);
    }
    socket.ws.close();
  });
});

describe('the sequencer read under any budget (fast-check)', () => {
  const STREAMS = ['a-1', 'a-2', 'b-1', 'bb-1'];
  const TYPES = ['X', 'Y', 'Z'];

  it('pages stay within max(limit, budget) and, followed, hold exactly the matches in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            stream: fc.constantFrom(...STREAMS),
            types: fc.array(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 6 }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(
          fc.record({
            streamPrefix: fc.option(fc.constantFrom('a-', 'b', 'bb-', 'c'), { nil: undefined }),
            types: fc.option(fc.subarray(TYPES), { nil: undefined }),
            allowedPrefixes: fc.option(fc.subarray(['a-', 'bb-'], { minLength: 1 }), { nil: undefined }),
            streams: fc.option(fc.subarray(STREAMS, { minLength: 1 }), { nil: undefined }),
            limit: fc.integer({ min: 1, max: 6 }),
            budget: fc.integer({ min: 1, max: 12 }),
            after: fc.integer({ min: 0, max: 40 }),
          }),
          { minLength: 1, maxLength: 10 },
        ),
        async (appends, reads) => {
          const store = freshStore('scanprop');
          const t = await token({ store });
          const log: Array<{ stream: string; type: string }> = [];
          for (const { stream, types } of appends) {
            const res = await appendTo(store, t)(
              stream,
              types.map((type) => newEvent(type)),
            );
            expect(res.status).toBe(200);
            log.push(...types.map((type) => ({ stream, type })));
          }
          const sequencer = sequencerStub(store) as unknown as {
            readAll(
              after: number,
              limit: number,
              scope: GlobalReadScope,
              maxScan?: number,
            ): Promise<GlobalPage>;
          };
          for (const r of reads) {
            const scope: GlobalReadScope = {};
            if (r.streamPrefix !== undefined || r.types !== undefined) {
              scope.filter = {};
              if (r.streamPrefix !== undefined) scope.filter.streamPrefix = r.streamPrefix;
              if (r.types !== undefined) scope.filter.types = r.types;
            }
            if (r.allowedPrefixes) scope.allowedPrefixes = r.allowedPrefixes;
            if (r.streams) scope.streams = r.streams;
            const { seen, pages } = await follow(
              (after) => sequencer.readAll(after, r.limit, scope, r.budget),
              r.limit,
              r.budget,
              r.after,
            );
            const expected = log
              .map((e, i) => ({ ...e, position: i + 1 }))
              .filter(
                (e) =>
                  e.position > r.after &&
                  (r.streamPrefix === undefined || e.stream.startsWith(r.streamPrefix)) &&
                  (r.types === undefined || r.types.length === 0 || r.types.includes(e.type)) &&
                  (!r.allowedPrefixes || r.allowedPrefixes.some((p) => e.stream.startsWith(p))) &&
                  (!r.streams || r.streams.includes(e.stream)),
              );
            expect(seen.map((e) => [e.position, e.stream, e.type])).toEqual(
              expected.map((e) => [e.position, e.stream, e.type]),
            );
            expect(pages.at(-1)!.scannedTo).toBe(Math.max(r.after, log.length));
          }
        },
      ),
      { numRuns: 12 },
    );
  });
});
