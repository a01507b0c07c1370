import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../envelope.ts';
import type { EventStore } from '../event-store.ts';
import type { ExpectedVersion } from '../expected-version.ts';
import { type ContractContext, codeOf, events } from './contract-support.ts';

/** The contract's model-based part: random appends, retries and reads against a model. */
export function describeModelContract(ctx: ContractContext): void {
  const { fresh, timeout, options } = ctx;

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
}

// ---- model ------------------------------------------------------------------------------
interface Model {
  streams: Map<string, string[]>;
  log: Array<{ id: string; stream: string; version: number; type: string }>;
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
      m.log.push({ id: e.id, stream: this.stream, version: version + i + 1, type: e.type });
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
    // Unfiltered, a page covers what it holds: up to its last event when full, else the head.
    expect(page.scannedTo).toBe(
      expected.length === this.limit ? this.after + this.limit : Math.max(this.after, m.log.length),
    );
  }
  toString = () => `readAll(after ${this.after}, limit ${this.limit})`;
}

/** A filtered read of the whole log after `after`, page by page, following `scannedTo`. */
class ReadFilteredCommand implements fc.AsyncCommand<Model, EventStore> {
  constructor(
    readonly after: number,
    readonly limit: number,
    readonly type: string,
  ) {}
  check = () => true;
  async run(m: Model, store: EventStore): Promise<void> {
    const seen: Array<number | undefined> = [];
    let cursor = this.after;
    for (;;) {
      const page = await store.readAll({ after: cursor, limit: this.limit, filter: { types: [this.type] } });
      expect(page.events.length).toBeLessThanOrEqual(this.limit);
      expect(page.scannedTo).toBeGreaterThanOrEqual(cursor);
      for (const e of page.events) {
        expect(e.type).toBe(this.type);
        expect(e.position! > cursor && e.position! <= page.scannedTo).toBe(true);
      }
      seen.push(...page.events.map((e) => e.position));
      if (page.scannedTo >= page.head) break;
      expect(page.scannedTo).toBeGreaterThan(cursor);
      cursor = page.scannedTo;
    }
    const expected = m.log
      .map((e, i) => ({ ...e, position: i + 1 }))
      .filter((e) => e.position > this.after && e.type === this.type)
      .map((e) => e.position);
    expect(seen).toEqual(expected);
  }
  toString = () => `readFiltered(after ${this.after}, limit ${this.limit}, ${this.type})`;
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
    fc
      .tuple(
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom('T1', 'T2', 'T3'),
      )
      .map(([a, l, t]) => new ReadFilteredCommand(a, l, t)),
  ];
}
