import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NewEvent } from './envelope.ts';
import { defaultLimits } from './limits.ts';
import { randomId } from './ports.ts';
import { hasDuplicate, quickEvent, validateAppend } from './validate-append.ts';

const nearlyValid = fc.record(
  {
    id: fc.oneof(fc.uuid(), fc.constant(randomId()), fc.string(), fc.integer()),
    type: fc.oneof(
      fc.constantFrom('Added', 'a.b:c-d', '$all', '', '1x', 'A'.repeat(100), 'A'.repeat(101)),
      fc.string(),
    ),
    schemaVersion: fc.oneof(
      fc.integer({ min: -2, max: 1002 }),
      fc.double(),
      fc.constantFrom('1', null, Number.MAX_SAFE_INTEGER + 2),
    ),
    data: fc.oneof(fc.jsonValue(), fc.constant(undefined)),
    metadata: fc.oneof(
      fc.dictionary(
        fc.oneof(fc.string(), fc.constantFrom('$author', 'k'.repeat(100), 'k'.repeat(101))),
        fc.jsonValue(),
      ),
      fc.jsonValue(),
    ),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

describe('quickEvent: the allocation-free check of the common event', () => {
  it('never accepts what zod refuses, and answers exactly as zod when it accepts', () => {
    fc.assert(
      fc.property(fc.oneof(nearlyValid, fc.anything()), (event) => {
        const quick = quickEvent(event);
        if (quick === undefined) return;
        const parsed = NewEvent.safeParse(event);
        expect(parsed.success).toBe(true);
        if (!parsed.success) return;
        expect(quick).toEqual({
          ...parsed.data,
          schemaVersion: parsed.data.schemaVersion ?? 1,
          metadata: parsed.data.metadata ?? {},
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('accepts the usual event, so the fast path is the one taken', () => {
    const event = { id: randomId(), type: 'Added', data: { sku: 'tea' }, metadata: { by: 'alice' } };
    expect(quickEvent(event)).toEqual({ ...event, schemaVersion: 1 });
    expect(quickEvent({ id: randomId(), type: 'Added', schemaVersion: 2, data: null })).toBeDefined();
  });

  it('leaves unknown keys to zod, which strips them', () => {
    const event = { id: randomId(), type: 'Added', data: 1, position: 7 };
    expect(quickEvent(event)).toBeUndefined();
    expect(validateAppend('s-1', [event], defaultLimits)[0]).not.toHaveProperty('position');
  });
});

describe('repeated event ids within an append', () => {
  it('hasDuplicate agrees with a Set', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.string(), fc.uuid())), (values) => {
        expect(hasDuplicate(values)).toBe(new Set(values).size !== values.length);
      }),
      { numRuns: 1000 },
    );
  });

  it('hasDuplicate agrees with a Set on sorted input, where it takes its one-pass path', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom('a', 'b'), fc.uuid()), { minLength: 2 }), (values) => {
        const sorted = [...values].sort();
        expect(hasDuplicate(sorted)).toBe(new Set(values).size !== values.length);
        expect(hasDuplicate(Array.from({ length: 100 }, () => randomId()))).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('reports the first problem in event order: a repeat before an invalid event, or the invalid event first', () => {
    const [a, b] = [randomId(), randomId()];
    const ok = (id: string) => ({ id, type: 'Added', data: 1 });
    const bad = { id: randomId(), type: '$reserved', data: 1 };
    const problem = (events: unknown[]) => {
      try {
        validateAppend('s-1', events, defaultLimits);
      } catch (e) {
        return (e as { details?: { issues?: Array<{ path: string }> } }).details?.issues?.[0]?.path;
      }
      return undefined;
    };
    expect(problem([ok(a), ok(b), ok(a), bad])).toBe('events.2.id');
    expect(problem([ok(a), bad, ok(b), ok(a)])).toMatch(/^events\.1/);
    expect(problem([ok(a), ok(b), ok(b), ok(a)])).toBe('events.2.id');
    expect(problem([ok(a), ok(b)])).toBeUndefined();
  });
});

describe('event sizes: the request size only spares measuring, never changes the answer', () => {
  const limits = { ...defaultLimits, maxEventBytes: 200 };
  // `1e20` is 4 bytes as sent and 21 once parsed and written again (which is what is stored).
  const request = (numbers: number) =>
    `{"events":[{"id":"${randomId()}","type":"Sized","data":[${Array(numbers).fill('1e20').join(',')}]}]}`;
  const answer = (text: string, sentBytes?: number) => {
    const { events } = JSON.parse(text) as { events: unknown[] };
    try {
      validateAppend('s', events, limits, sentBytes);
      return 'ok';
    } catch (e) {
      return (e as { code?: string }).code;
    }
  };

  it('gives the same answer with or without the request size', () => {
    for (const numbers of [0, 1, 2, 5, 8, 9, 10, 20, 30]) {
      const text = request(numbers);
      expect(answer(text, text.length), `${numbers} numbers`).toBe(answer(text));
    }
    // The request is within the limit, yet its event is not once written again.
    const text = request(20);
    expect(text.length).toBeLessThan(limits.maxEventBytes);
    expect(answer(text, text.length)).toBe('PayloadTooLarge');
    expect(answer(request(1), request(1).length)).toBe('ok');
  });
});
