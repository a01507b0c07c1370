import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../envelope.ts';
import type { ExpectedVersion } from '../expected-version.ts';
import { describeLogContract } from './contract-log.ts';
import { describeModelContract } from './contract-model.ts';
import {
  type ContractContext,
  type ContractOptions,
  codeOf,
  events,
  newEvent,
  readAllEvents,
  type StoreUnderTest,
  uniqueStream,
} from './contract-support.ts';

export type { ContractOptions, StoreUnderTest } from './contract-support.ts';
export { newEvent } from './contract-support.ts';

/**
 * The contract every edgelog store keeps: invariants I1-I6 and I11 of the design and the
 * protocol rules. Run it with a factory that gives a fresh, empty store per call.
 */
export function describeEventStoreContract(
  name: string,
  factory: () => Promise<StoreUnderTest> | StoreUnderTest,
  options: ContractOptions = {},
): void {
  const timeout = options.timeoutMs ?? 30_000;
  const delivery = options.deliveryTimeoutMs ?? 5_000;

  describe(`EventStore contract: ${name}`, () => {
    const open: StoreUnderTest[] = [];
    const fresh = async () => {
      const s = await factory();
      open.push(s);
      return s;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close?.();
    });
    const ctx: ContractContext = { fresh, timeout, delivery, options };

    describe('append and read a stream (I1, I3)', () => {
      it(
        'stores events with versions 1..n, increasing positions and every envelope field',
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          const sent = [
            newEvent('Opened', { a: 1 }, { correlationId: 'c-1' }),
            newEvent('Renamed', { name: 'ü€𝄞' }),
            { ...newEvent('Closed', { done: true }), schemaVersion: 2 },
          ];
          const result = await store.append(stream, sent, { expectedVersion: 'no_stream' });
          expect(result.version).toBe(3);
          expect(result.positions).toHaveLength(3);
          expect(result.positions[1]! > result.positions[0]!).toBe(true);
          expect(result.positions[2]! > result.positions[1]!).toBe(true);

          const read = await store.readStream(stream);
          expect(read.version).toBe(3);
          expect(read.events.map((e) => e.version)).toEqual([1, 2, 3]);
          expect(read.events.map((e) => e.id)).toEqual(sent.map((e) => e.id));
          expect(read.events.map((e) => e.position)).toEqual(result.positions);
          read.events.forEach((e, i) => {
            expect(e.stream).toBe(stream);
            expect(e.type).toBe(sent[i]!.type);
            expect(e.data).toEqual(sent[i]!.data);
            expect(e.metadata).toMatchObject(sent[i]!.metadata ?? {});
            expect(typeof e.recordedAt).toBe('string');
            expect(Number.isNaN(Date.parse(e.recordedAt!))).toBe(false);
          });
          expect(read.events.map((e) => e.schemaVersion)).toEqual([1, 1, 2]);
        },
        timeout,
      );

      it(
        'a read of a stream that does not exist is StreamNotFound',
        async () => {
          const { store } = await fresh();
          expect(await codeOf(store.readStream(uniqueStream()))).toBe('StreamNotFound');
        },
        timeout,
      );

      it(
        'reads forwards and backwards from a version, with limits',
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          await store.append(stream, events(10));
          const versions = (r: { events: EventEnvelope[] }) => r.events.map((e) => e.version);
          expect(versions(await store.readStream(stream, { from: 4, limit: 3 }))).toEqual([4, 5, 6]);
          expect(versions(await store.readStream(stream, { from: 9 }))).toEqual([9, 10]);
          expect(versions(await store.readStream(stream, { from: 11 }))).toEqual([]);
          expect(versions(await store.readStream(stream, { direction: 'backward', limit: 3 }))).toEqual([
            10, 9, 8,
          ]);
          expect(versions(await store.readStream(stream, { direction: 'backward', from: 2 }))).toEqual([
            2, 1,
          ]);
          expect(
            versions(await store.readStream(stream, { direction: 'backward', from: 5, limit: 2 })),
          ).toEqual([5, 4]);
          const all = await store.readStream(stream, { limit: 1 });
          expect(versions(all)).toEqual([1]);
          expect(all.version).toBe(10);
        },
        timeout,
      );
    });

    describe('expected version (I3, I4)', () => {
      type Case = [ExpectedVersion | undefined, number, boolean];
      const cases: Case[] = [
        [undefined, 0, true],
        [undefined, 2, true],
        ['any', 0, true],
        ['any', 2, true],
        ['no_stream', 0, true],
        ['no_stream', 2, false],
        [0, 0, true],
        [0, 2, false],
        ['stream_exists', 0, false],
        ['stream_exists', 2, true],
        [2, 2, true],
        [1, 2, false],
        [3, 2, false],
        [5, 0, false],
      ];
      it.each(cases)(
        'expectedVersion %s on a stream at version %s: accepted = %s',
        async (expectedVersion, at, accepted) => {
          const { store } = await fresh();
          const stream = uniqueStream();
          if (at > 0) await store.append(stream, events(at));
          const attempt = store.append(
            stream,
            events(1),
            expectedVersion === undefined ? {} : { expectedVersion },
          );
          if (accepted) {
            expect((await attempt).version).toBe(at + 1);
          } else {
            const error = await attempt.then(
              () => undefined,
              (e: unknown) => e as { code: string; details: { expected: unknown; actual: number } },
            );
            expect(error?.code).toBe('WrongExpectedVersion');
            expect(error?.details.actual).toBe(at);
            expect(error?.details.expected).toBe(expectedVersion);
            const after = await store.readAll();
            expect(after.events).toHaveLength(at);
          }
        },
        timeout,
      );

      it(
        'of 20 concurrent appends with the same expected version exactly one wins',
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          await store.append(stream, events(2));
          const attempts = await Promise.allSettled(
            Array.from({ length: 20 }, () => store.append(stream, events(2), { expectedVersion: 2 })),
          );
          const won = attempts.filter((a) => a.status === 'fulfilled');
          const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
          expect(won).toHaveLength(1);
          expect(lost.map((l) => (l.reason as { code?: string }).code)).toEqual(
            Array(19).fill('WrongExpectedVersion'),
          );
          const read = await store.readStream(stream);
          expect(read.events.map((e) => e.version)).toEqual([1, 2, 3, 4]);
        },
        timeout,
      );

      it(
        "concurrent appends with 'any' all land, gap-free, each event once",
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          const batches = Array.from({ length: 10 }, (_, i) => events((i % 3) + 1));
          await Promise.all(batches.map((b) => store.append(stream, b)));
          const read = await store.readStream(stream);
          const total = batches.reduce((n, b) => n + b.length, 0);
          expect(read.events.map((e) => e.version)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
          expect(new Set(read.events.map((e) => e.id)).size).toBe(total);
          for (const b of batches) {
            const at = read.events.findIndex((e) => e.id === b[0]!.id);
            expect(read.events.slice(at, at + b.length).map((e) => e.id)).toEqual(b.map((e) => e.id));
          }
        },
        timeout,
      );
    });

    describe('idempotency (I2)', () => {
      it(
        'a retried append returns the original versions and positions, even after the stream moved on',
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          const first = events(2);
          const original = await store.append(stream, first, { expectedVersion: 'no_stream' });
          await store.append(stream, events(3));
          const retried = await store.append(stream, first, { expectedVersion: 'no_stream' });
          expect(retried).toEqual(original);
          const again = await store.append(stream, first);
          expect(again).toEqual(original);
          const all = await readAllEvents(store);
          expect(all).toHaveLength(5);
          expect(new Set(all.map((e) => e.id)).size).toBe(5);
        },
        timeout,
      );

      it(
        'concurrent retries of one append store it once',
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          const batch = events(3);
          const results = await Promise.all(Array.from({ length: 8 }, () => store.append(stream, batch)));
          for (const r of results) expect(r).toEqual(results[0]);
          expect((await store.readStream(stream)).version).toBe(3);
        },
        timeout,
      );

      it(
        'a partial overlap of ids is IdempotencyConflict and stores nothing',
        async () => {
          const { store } = await fresh();
          const stream = uniqueStream();
          const first = events(2);
          await store.append(stream, first);
          const mixed = [first[1]!, newEvent()];
          expect(await codeOf(store.append(stream, mixed))).toBe('IdempotencyConflict');
          expect((await store.readStream(stream)).version).toBe(2);
          expect(await readAllEvents(store)).toHaveLength(2);
        },
        timeout,
      );

      it(
        'an event id is unique per store: reusing it on another stream is refused',
        async () => {
          const { store } = await fresh();
          const batch = events(1);
          await store.append(uniqueStream('a'), batch);
          const other = uniqueStream('b');
          expect(await codeOf(store.append(other, batch))).toBe('IdempotencyConflict');
          expect(await codeOf(store.readStream(other))).toBe('StreamNotFound');
          expect(await readAllEvents(store)).toHaveLength(1);
        },
        timeout,
      );
    });

    describeLogContract(ctx);
    describeModelContract(ctx);
  });
}
