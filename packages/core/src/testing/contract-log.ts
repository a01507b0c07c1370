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
        const orders = await store.readAll({ filter: { streamPrefix: 'order-' } });
        expect(orders.events.map((e) => e.position)).toEqual([1, 2, 4]);
        const placed = await store.readAll({ filter: { types: ['Placed'] } });
        expect(placed.events.map((e) => e.position)).toEqual([1, 4]);
        const both = await store.readAll({
          after: 1,
          filter: { streamPrefix: 'order-', types: ['Placed'] },
        });
        expect(both.events.map((e) => e.position)).toEqual([4]);
        expect((await store.readAll({ after: 4 })).events).toEqual([]);
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
