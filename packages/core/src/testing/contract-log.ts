import { describe, expect, it } from 'vitest';
import type { EventEnvelope, NewEvent } from '../envelope.ts';
import { defaultLimits } from '../limits.ts';
import { randomId } from '../ports.ts';
import {
  type ContractContext,
  codeOf,
  events,
  newEvent,
  readAllEvents,
  sleep,
  uniqueStream,
  waitFor,
} from './contract-support.ts';

/** The contract's global log (I5), subscriptions (I6) and refused appends (I11). */
export function describeLogContract(ctx: ContractContext): void {
  const { fresh, timeout, delivery } = ctx;

  describe('global log (I5)', () => {
    it(
      'positions are unique, gap-free from 1, increasing in commit order and consistent with versions',
      async () => {
        const { store } = await fresh();
        const streams = [uniqueStream('x'), uniqueStream('y'), uniqueStream('z')];
        await Promise.all(
          Array.from({ length: 12 }, (_, i) => store.append(streams[i % 3]!, events((i % 4) + 1))),
        );
        const all = await readAllEvents(store);
        expect(all.map((e) => e.position)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
        for (const s of streams) {
          const ofStream = all.filter((e) => e.stream === s);
          expect(ofStream.map((e) => e.version)).toEqual(
            Array.from({ length: ofStream.length }, (_, i) => i + 1),
          );
          const read = await store.readStream(s);
          expect(read.events.map((e) => e.position)).toEqual(ofStream.map((e) => e.position));
        }
        expect((await store.readAll({ after: all.length })).head).toBe(all.length);
      },
      timeout,
    );

    it(
      'reads all after an exclusive position, with a limit, a stream prefix and types',
      async () => {
        const { store } = await fresh();
        const order = `order-${randomId().slice(0, 6)}`;
        const user = `user-${randomId().slice(0, 6)}`;
        await store.append(order, [newEvent('Placed'), newEvent('Shipped')]);
        await store.append(user, [newEvent('Registered')]);
        await store.append(order, [newEvent('Placed')]);
        const page = await store.readAll({ after: 1, limit: 2 });
        expect(page.events.map((e) => e.position)).toEqual([2, 3]);
        expect(page.head).toBe(4);
        expect(page.scannedTo).toBe(3);
        const orders = await store.readAll({ filter: { streamPrefix: 'order-' } });
        expect(orders.events.map((e) => e.position)).toEqual([1, 2, 4]);
        expect(orders.scannedTo).toBe(4);
        const placed = await store.readAll({ filter: { types: ['Placed'] } });
        expect(placed.events.map((e) => e.position)).toEqual([1, 4]);
        const both = await store.readAll({
          after: 1,
          filter: { streamPrefix: 'order-', types: ['Placed'] },
        });
        expect(both.events.map((e) => e.position)).toEqual([4]);
        expect(await store.readAll({ after: 4 })).toMatchObject({ events: [], head: 4, scannedTo: 4 });
      },
      timeout,
    );

    it(
      'a sparse filter answers pages within the scan budget; following scannedTo yields every match once, in order',
      async () => {
        const { store, limits } = await fresh();
        const budget = limits?.maxScanPerRead ?? defaultLimits.maxScanPerRead;
        const hit = `hit-${randomId().slice(0, 6)}`;
        const noise = uniqueStream('noise');
        // Matches a few budgets apart (or a few dozen positions apart when the budget is large).
        const gap = Math.min(budget * 2 + 1, 40);
        const want: number[] = [];
        for (let i = 0; i < 5; i++) {
          await store.append(noise, events(gap, 'Noise'));
          want.push(...(await store.append(hit, [newEvent('Hit')])).positions);
        }
        const head = (await store.append(noise, events(gap, 'Noise'))).positions.at(-1)!;
        for (const filter of [
          { types: ['Hit'] },
          { streamPrefix: hit },
          { streamPrefix: 'hit-', types: ['Hit'] },
        ])
          for (const limit of [1, 2, 500]) {
            const seen: number[] = [];
            let after = 0;
            for (let pages = 0; ; pages++) {
              expect(pages).toBeLessThan(head + 1);
              const page = await store.readAll({ after, limit, filter });
              expect(page.head).toBe(head);
              expect(page.events.length).toBeLessThanOrEqual(limit);
              expect(page.scannedTo).toBeGreaterThan(after);
              expect(page.scannedTo - after).toBeLessThanOrEqual(Math.max(limit, budget));
              for (const e of page.events)
                expect(e.position! > after && e.position! <= page.scannedTo).toBe(true);
              seen.push(...page.events.map((e) => e.position!));
              after = page.scannedTo;
              if (after >= page.head) break;
            }
            expect(seen).toEqual(want);
            expect(after).toBe(head);
          }
        expect(await readAllEvents(store, 0, { types: ['Hit'] }, 2)).toHaveLength(5);
      },
      timeout,
    );
  });

  describe('subscriptions (I6)', () => {
    it(
      'catch-up then live neither skips nor repeats, even with appends during catch-up',
      async () => {
        const { store } = await fresh();
        const stream = uniqueStream();
        // Over one page of catch-up (pages hold 500 by default).
        for (let i = 0; i < 30; i++) await store.append(stream, events(20));
        const seen: number[] = [];
        const sub = store.subscribe({}, (e) => {
          seen.push(e.position!);
        });
        const writers = Promise.all(Array.from({ length: 5 }, () => store.append(uniqueStream(), events(2))));
        const caughtUp = await sub.caughtUp;
        expect(caughtUp).toBeGreaterThanOrEqual(600);
        await writers;
        await store.append(stream, events(4));
        await waitFor(() => seen.length >= 614, delivery, '614 events');
        await sleep(50);
        await sub.close();
        expect(seen).toEqual(Array.from({ length: 614 }, (_, i) => i + 1));
      },
      timeout,
    );

    it(
      'resuming from a checkpoint yields exactly the events after it, filtered',
      async () => {
        const { store } = await fresh();
        const a = `acc-${randomId().slice(0, 6)}`;
        await store.append(a, events(4));
        await store.append(uniqueStream('other'), events(2));
        const seen: EventEnvelope[] = [];
        const sub = store.subscribe({ after: 2, filter: { streamPrefix: 'acc-' } }, (e) => {
          seen.push(e);
        });
        await sub.caughtUp;
        await store.append(a, events(1));
        await store.append(uniqueStream('other'), events(1));
        await waitFor(() => seen.length >= 3, delivery, '3 events');
        await sleep(50);
        await sub.close();
        expect(seen.map((e) => [e.stream, e.version])).toEqual([
          [a, 3],
          [a, 4],
          [a, 5],
        ]);
      },
      timeout,
    );

    it(
      'a filtered subscription over a sparse log (matches scan budgets apart) catches up, then goes live',
      async () => {
        const { store, limits } = await fresh();
        // A subscription reads pages of 500, and a read may always scan as far as its page:
        // matches farther apart than that, when a store's budget makes it affordable.
        const reach = Math.max(limits?.maxScanPerRead ?? defaultLimits.maxScanPerRead, 500);
        const gap = reach <= 1000 ? reach + 1 : 40;
        const perAppend = limits?.maxEventsPerAppend ?? defaultLimits.maxEventsPerAppend;
        const noise = uniqueStream('noise');
        const addNoise = async () => {
          let head = 0;
          for (let n = 0; n < gap; n += perAppend)
            head = (await store.append(noise, events(Math.min(perAppend, gap - n), 'Noise'))).positions.at(
              -1,
            )!;
          return head;
        };
        const rare = `rare-${randomId().slice(0, 6)}`;
        const want: string[] = [];
        for (let i = 0; i < 3; i++) {
          await addNoise();
          const e = newEvent('Rare');
          await store.append(rare, [e]);
          want.push(e.id);
        }
        const head = await addNoise();
        const seen: string[] = [];
        const sub = store.subscribe({ filter: { types: ['Rare'] } }, (e) => {
          seen.push(e.id);
        });
        expect(await sub.caughtUp).toBe(head);
        expect(seen).toEqual(want);
        await addNoise();
        const live = newEvent('Rare');
        await store.append(rare, [live]);
        await waitFor(() => seen.length >= 4, delivery, 'the live match');
        await sleep(50);
        await sub.close();
        expect(seen).toEqual([...want, live.id]);
      },
      timeout,
    );

    it(
      'a closed subscription delivers nothing more',
      async () => {
        const { store } = await fresh();
        const seen: number[] = [];
        const sub = store.subscribe({}, (e) => {
          seen.push(e.position!);
        });
        await sub.caughtUp;
        await sub.close();
        await store.append(uniqueStream(), events(2));
        await sleep(100);
        expect(seen).toEqual([]);
      },
      timeout,
    );
  });

  describe('refused appends leave nothing visible (I11)', () => {
    it(
      'refuses an oversize event whole, with the valid events of its batch',
      async () => {
        const { store, limits } = await fresh();
        const max = limits?.maxEventBytes ?? defaultLimits.maxEventBytes;
        const stream = uniqueStream();
        const big = newEvent('Big', { blob: 'x'.repeat(max) });
        expect(await codeOf(store.append(stream, [newEvent(), big]))).toBe('PayloadTooLarge');
        expect(await codeOf(store.readStream(stream))).toBe('StreamNotFound');
        expect(await readAllEvents(store)).toEqual([]);
      },
      timeout,
    );

    it(
      'refuses a batch over the event count limit',
      async () => {
        const { store, limits } = await fresh();
        const max = limits?.maxEventsPerAppend ?? defaultLimits.maxEventsPerAppend;
        expect(await codeOf(store.append(uniqueStream(), events(max + 1)))).toBe('PayloadTooLarge');
        expect(await readAllEvents(store)).toEqual([]);
      },
      timeout,
    );

    it(
      'refuses invalid events and reserved names with Validation, storing nothing',
      async () => {
        const { store } = await fresh();
        const stream = uniqueStream();
        const bad: unknown[][] = [
          [newEvent(), { ...newEvent(), type: '$system' }],
          [newEvent(), newEvent('Ok', { a: 1 }, { $author: 'me' })],
          [{ ...newEvent(), id: 'not-a-uuid' }],
          [newEvent(), { ...newEvent(), type: '' }],
          [],
        ];
        for (const batch of bad) {
          expect(await codeOf(store.append(stream, batch as NewEvent[]))).toBe('Validation');
        }
        const dup = newEvent();
        expect(await codeOf(store.append(stream, [dup, dup]))).toBe('Validation');
        expect(await codeOf(store.append('$all', [newEvent()]))).toBe('Validation');
        expect(await readAllEvents(store)).toEqual([]);
      },
      timeout,
    );

    it(
      'a wrong expected version stores none of the batch and a subscriber never sees it',
      async () => {
        const { store } = await fresh();
        const stream = uniqueStream();
        await store.append(stream, events(1));
        const seen: string[] = [];
        const sub = store.subscribe({}, (e) => {
          seen.push(e.id);
        });
        await sub.caughtUp;
        const rejected = events(3);
        expect(await codeOf(store.append(stream, rejected, { expectedVersion: 5 }))).toBe(
          'WrongExpectedVersion',
        );
        const accepted = events(1);
        await store.append(stream, accepted, { expectedVersion: 1 });
        await waitFor(() => seen.includes(accepted[0]!.id), delivery, 'the accepted event');
        await sub.close();
        const ids = (await readAllEvents(store)).map((e) => e.id);
        for (const e of rejected) {
          expect(ids).not.toContain(e.id);
          expect(seen).not.toContain(e.id);
        }
        expect((await store.readStream(stream)).version).toBe(2);
      },
      timeout,
    );
  });
}
