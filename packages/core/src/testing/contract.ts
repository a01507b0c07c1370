import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventEnvelope, NewEvent } from '../envelope.ts';
import type { EventStore, ReadAllResult } from '../event-store.ts';
import type { ExpectedVersion } from '../expected-version.ts';
import type { Limits } from '../limits.ts';
import { defaultLimits } from '../limits.ts';
import { randomId } from '../ports.ts';

export interface StoreUnderTest {
  store: EventStore;
  /** The limits the store enforces, when stricter than core's defaults. */
  limits?: Partial<Limits>;
  close?: () => Promise<void>;
}

export interface ContractOptions {
  /** fast-check runs of the model-based test (each run uses a fresh store). Default 25. */
  modelRuns?: number;
  /** How long to wait for a subscription to deliver, ms. Default 5,000. */
  deliveryTimeoutMs?: number;
  /** Test timeout, ms. Default 30,000. */
  timeoutMs?: number;
}

let counter = 0;
/** A new event with a fresh UUID. */
export const newEvent = (
  type = 'Tested',
  data: unknown = { n: ++counter },
  metadata?: Record<string, unknown>,
): NewEvent => ({
  id: randomId(),
  type,
  data,
  ...(metadata ? { metadata } : {}),
});
const events = (n: number, type = 'Tested') => Array.from({ length: n }, () => newEvent(type));
const uniqueStream = (prefix = 'contract') => `${prefix}-${randomId().slice(0, 8)}`;

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { code?: unknown }).code ?? `no code: ${String(e)}`);
  }
  return 'resolved';
}

async function readAllEvents(store: EventStore, after = 0): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = [];
  let cursor = after;
  for (;;) {
    const page: ReadAllResult = await store.readAll({ after: cursor, limit: 500 });
    out.push(...page.events);
    if (page.events.length < 500) return out;
    cursor = page.events.at(-1)!.position!;
  }
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

declare function setTimeout(fn: () => void, ms: number): unknown;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
          const writers = Promise.all(
            Array.from({ length: 5 }, () => store.append(uniqueStream(), events(2))),
          );
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

    describe('model-based (fast-check commands)', () => {
      it(
        'random appends, retries and reads agree with a model of the protocol',
        async () => {
          await fc.assert(
            fc.asyncProperty(fc.commands(modelCommands(), { maxCommands: 25 }), async (cmds) => {
              const sut = await fresh();
              const model: Model = { streams: new Map(), log: [], appends: [] };
              await fc.asyncModelRun(() => ({ model, real: sut.store }), cmds);
            }),
            { numRuns: options.modelRuns ?? 25 },
          );
        },
        timeout * 4,
      );
    });
  });
}

// ---- model ------------------------------------------------------------------------------
interface Model {
  streams: Map<string, string[]>;
  log: Array<{ id: string; stream: string; version: number }>;
  appends: Array<{ stream: string; events: NewEvent[]; version: number; positions: number[] }>;
}

type ExpectMode = 'any' | 'right' | 'wrong' | 'no_stream' | 'stream_exists' | 'none';
const STREAMS = ['m-a', 'm-b', 'm-c'];

class AppendCommand implements fc.AsyncCommand<Model, EventStore> {
  constructor(
    readonly stream: string,
    readonly count: number,
    readonly mode: ExpectMode,
  ) {}
  check = () => true;
  async run(m: Model, store: EventStore): Promise<void> {
    const ids = m.streams.get(this.stream) ?? [];
    const version = ids.length;
    const expectedVersion: ExpectedVersion | undefined =
      this.mode === 'right'
        ? version
        : this.mode === 'wrong'
          ? version + 1
          : this.mode === 'none'
            ? undefined
            : this.mode;
    const accepted =
      this.mode === 'wrong'
        ? false
        : this.mode === 'no_stream'
          ? version === 0
          : this.mode === 'stream_exists'
            ? version > 0
            : true;
    const batch = events(this.count, `T${this.count}`);
    const attempt = store.append(
      this.stream,
      batch,
      expectedVersion === undefined ? {} : { expectedVersion },
    );
    if (!accepted) {
      expect(await codeOf(attempt)).toBe('WrongExpectedVersion');
      return;
    }
    const result = await attempt;
    const positions = batch.map((_, i) => m.log.length + i + 1);
    expect(result).toEqual({ version: version + batch.length, positions });
    m.streams.set(this.stream, [...ids, ...batch.map((e) => e.id)]);
    batch.forEach((e, i) => {
      m.log.push({ id: e.id, stream: this.stream, version: version + i + 1 });
    });
    m.appends.push({ stream: this.stream, events: batch, version: version + batch.length, positions });
  }
  toString = () => `append(${this.stream}, ${this.count}, ${this.mode})`;
}

class RetryCommand implements fc.AsyncCommand<Model, EventStore> {
  constructor(readonly pick: number) {}
  check = (m: Readonly<Model>) => m.appends.length > 0;
  async run(m: Model, store: EventStore): Promise<void> {
    const original = m.appends[this.pick % m.appends.length]!;
    const result = await store.append(original.stream, original.events, { expectedVersion: 'no_stream' });
    expect(result).toEqual({ version: original.version, positions: original.positions });
  }
  toString = () => `retry(#${this.pick})`;
}

class ReadStreamCommand implements fc.AsyncCommand<Model, EventStore> {
  constructor(
    readonly stream: string,
    readonly backward: boolean,
  ) {}
  check = () => true;
  async run(m: Model, store: EventStore): Promise<void> {
    const ids = m.streams.get(this.stream);
    if (!ids) {
      expect(await codeOf(store.readStream(this.stream))).toBe('StreamNotFound');
      return;
    }
    const read = await store.readStream(this.stream, this.backward ? { direction: 'backward' } : {});
    expect(read.version).toBe(ids.length);
    expect(read.events.map((e) => e.id)).toEqual(this.backward ? [...ids].reverse() : ids);
  }
  toString = () => `readStream(${this.stream}, ${this.backward ? 'backward' : 'forward'})`;
}

class ReadAllCommand implements fc.AsyncCommand<Model, EventStore> {
  constructor(
    readonly after: number,
    readonly limit: number,
  ) {}
  check = () => true;
  async run(m: Model, store: EventStore): Promise<void> {
    const page = await store.readAll({ after: this.after, limit: this.limit });
    expect(page.head).toBe(m.log.length);
    const expected = m.log.slice(this.after, this.after + this.limit);
    expect(page.events.map((e) => [e.id, e.stream, e.version, e.position])).toEqual(
      expected.map((e, i) => [e.id, e.stream, e.version, this.after + i + 1]),
    );
  }
  toString = () => `readAll(after ${this.after}, limit ${this.limit})`;
}

function modelCommands(): Array<fc.Arbitrary<fc.AsyncCommand<Model, EventStore>>> {
  const stream = fc.constantFrom(...STREAMS);
  return [
    fc
      .tuple(
        stream,
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom<ExpectMode>('any', 'right', 'wrong', 'no_stream', 'stream_exists', 'none'),
      )
      .map(([s, n, mode]) => new AppendCommand(s, n, mode)),
    fc.nat().map((n) => new RetryCommand(n)),
    fc.tuple(stream, fc.boolean()).map(([s, b]) => new ReadStreamCommand(s, b)),
    fc
      .tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 1, max: 10 }))
      .map(([a, l]) => new ReadAllCommand(a, l)),
  ];
}
