import * as core from '@edgelog/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultClientLimits } from './local-event-store.ts';
import { validateAppend } from './validate.ts';
import * as wire from './wire.ts';

const envelope = fc.record({
  id: fc.uuid(),
  stream: fc.constantFrom('a', 'order-1'),
  type: fc.constantFrom('T', 'Placed'),
  schemaVersion: fc.integer({ min: 0, max: 3 }),
  data: fc.jsonValue(),
  metadata: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 2 }),
  version: fc.integer({ min: 0, max: 5 }),
  position: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
  recordedAt: fc.option(fc.constant('2026-01-01T00:00:00.000Z'), { nil: undefined }),
});

describe("the client's zod/mini wire schemas agree with core's protocol", () => {
  it('on pull pages (ours also takes a page without `scannedTo`, from servers before the scan budget)', () => {
    fc.assert(
      fc.property(
        fc.array(envelope, { maxLength: 3 }),
        fc.integer({ min: -1, max: 9 }),
        fc.option(fc.integer({ min: -1, max: 9 }), { nil: undefined }),
        (events, head, scannedTo) => {
          const body = JSON.parse(JSON.stringify({ events, head, scannedTo }));
          const ours = wire.PullResponse.safeParse(body).success;
          const theirs = core.PullResponse.safeParse(body).success;
          if (scannedTo === undefined)
            expect(ours).toBe(core.PullResponse.safeParse({ ...body, scannedTo: 0 }).success);
          else expect(ours).toBe(theirs);
        },
      ),
    );
  });
  it('on push answers', () => {
    const result = fc.oneof(
      fc.record({
        status: fc.constantFrom('committed', 'duplicate'),
        commitId: fc.uuid(),
        version: fc.integer({ min: 0, max: 3 }),
        positions: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
      }),
      fc.record({
        status: fc.constant('conflict'),
        commitId: fc.uuid(),
        version: fc.integer({ min: 0, max: 3 }),
        events: fc.array(envelope, { maxLength: 2 }),
      }),
      fc.record({
        status: fc.constant('rejected'),
        commitId: fc.uuid(),
        error: fc.record({ code: fc.constantFrom('Validation', 'Forbidden'), message: fc.string() }),
      }),
      fc.record({ status: fc.constant('bogus'), commitId: fc.uuid() }),
    );
    fc.assert(
      fc.property(fc.array(result, { maxLength: 3 }), (results) => {
        const body = JSON.parse(JSON.stringify({ results }));
        const ours = wire.PushResponse.safeParse(body).success;
        const theirs = core.PushResponse.safeParse(body).success;
        // committed/duplicate with version 0 is refused by core (version >= 1); ours only checks integers.
        if (theirs) expect(ours).toBe(true);
        if (!ours) expect(theirs).toBe(false);
      }),
    );
  });
  it('on WebSocket messages', () => {
    const samples = [
      { type: 'ready', head: 3 },
      { type: 'events', subscription: 'all', events: [] },
      { type: 'caught-up', subscription: 'all', position: 4 },
      { type: 'heartbeat', head: 9 },
      { type: 'pong' },
      { type: 'error', error: { code: 'Unauthorized', message: 'no' } },
      { type: 'nope' },
      { type: 'ready' },
    ];
    for (const s of samples)
      expect(wire.ServerMessage.safeParse(s).success).toBe(core.ServerMessage.safeParse(s).success);
  });
});

describe("the client's hand-written append validation agrees with core's", () => {
  const limits = { ...defaultClientLimits, maxEventBytes: 300, maxEventsPerAppend: 3 };
  const codeOf = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (e) {
      return (e as { code: string }).code;
    }
  };
  const event = fc.record(
    {
      id: fc.oneof(fc.uuid(), fc.constantFrom('x', '', 'ffffffff-ffff-ffff-ffff-ffffffffffff')),
      type: fc.oneof(
        fc.constantFrom('T', 'Order.Placed', '$sys', '', '9a', 'a b'),
        fc.string({ maxLength: 4 }),
      ),
      schemaVersion: fc.oneof(fc.integer({ min: -1, max: 1002 }), fc.constant(1.5)),
      data: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ minLength: 200, maxLength: 400 })),
      metadata: fc.dictionary(fc.constantFrom('a', '$x', 'k'.repeat(101)), fc.integer(), { maxKeys: 2 }),
    },
    { requiredKeys: ['id', 'type'] },
  );
  it('on random appends (same accept/refuse and same code)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('s', '$all', '', 'a:b'),
        fc.array(event, { maxLength: 4 }),
        (stream, events) => {
          const ours = codeOf(() => validateAppend(stream, events, limits));
          const theirs = codeOf(() => core.validateAppend(stream, events, limits));
          expect(ours).toBe(theirs);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('coveredTo: where the next pull starts', () => {
  const page = (positions: number[], head: number, scannedTo?: number) =>
    wire.PullResponse.parse({
      events: positions.map((position, i) => ({
        id: `e${i}`,
        stream: 's',
        type: 'T',
        schemaVersion: 1,
        data: null,
        metadata: {},
        version: i + 1,
        position,
      })),
      head,
      ...(scannedTo === undefined ? {} : { scannedTo }),
    });
  it("follows the server's scannedTo, past the last event and short of the head", () => {
    expect(wire.coveredTo(page([], 50_000, 10_000), 0, 500)).toBe(10_000);
    expect(wire.coveredTo(page([3, 9], 50_000, 10_003), 3, 500)).toBe(10_003);
  });
  it('without one (an older server): a full page ends at its last event, a short one at the head', () => {
    expect(wire.coveredTo(page([1, 2], 9), 0, 2)).toBe(2);
    expect(wire.coveredTo(page([1], 9), 0, 2)).toBe(9);
    expect(wire.coveredTo(page([], 9), 12, 2)).toBe(12);
  });
});
