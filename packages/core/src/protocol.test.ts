import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EdgelogError,
  fromWire,
  httpStatusOf,
  isEdgelogError,
  toWireError,
  wrongExpectedVersion,
} from './errors.ts';
import { utf8Length } from './limits.ts';
import {
  ClientMessage,
  PushResponse,
  paths,
  ReadAllQuery,
  ReadAllResponse,
  ReadStreamQuery,
  ServerMessage,
} from './protocol.ts';

declare const Buffer: { byteLength(s: string, encoding: 'utf8'): number };

describe('wire protocol v1', () => {
  it('parses query strings, coercing numbers and splitting type lists', () => {
    expect(ReadAllQuery.parse({ after: '10', limit: '50', types: 'A,B' })).toEqual({
      after: 10,
      limit: 50,
      types: ['A', 'B'],
    });
    expect(ReadStreamQuery.parse({ from: '3', direction: 'backward' })).toEqual({
      from: 3,
      direction: 'backward',
    });
    expect(ReadAllQuery.safeParse({ limit: '100000' }).success).toBe(false);
    expect(ReadAllQuery.safeParse({ after: '-1' }).success).toBe(false);
  });

  it('a global page says how far it scanned', () => {
    expect(ReadAllResponse.parse({ events: [], head: 30_000, scannedTo: 10_000 })).toEqual({
      events: [],
      head: 30_000,
      scannedTo: 10_000,
    });
    expect(ReadAllResponse.safeParse({ events: [], head: 3 }).success).toBe(false);
    expect(ReadAllResponse.safeParse({ events: [], head: 3, scannedTo: -1 }).success).toBe(false);
  });

  it('answers push commit by commit with a discriminated result', () => {
    const parsed = PushResponse.parse({
      results: [
        { status: 'committed', commitId: 'c1', version: 2, positions: [4, 5] },
        { status: 'conflict', commitId: 'c2', version: 3, events: [] },
        { status: 'rejected', commitId: 'c3', error: { code: 'Validation', message: 'bad' } },
      ],
    });
    expect(parsed.results.map((r) => r.status)).toEqual(['committed', 'conflict', 'rejected']);
  });

  it('validates WebSocket messages both ways', () => {
    expect(
      ClientMessage.safeParse({ type: 'subscribe', id: 's1', after: 5, filter: { streamPrefix: 'o-' } })
        .success,
    ).toBe(true);
    expect(ClientMessage.safeParse({ type: 'subscribe', id: '', after: 5 }).success).toBe(false);
    expect(ServerMessage.safeParse({ type: 'caught-up', subscription: 's1', position: 9 }).success).toBe(
      true,
    );
    expect(ServerMessage.safeParse({ type: 'nope' }).success).toBe(false);
    expect(paths.streamEvents('s', 'order-1')).toBe('/v1/stores/s/streams/order-1/events');
  });
});

describe('errors', () => {
  it('cross the wire as plain data and come back typed by code', () => {
    const e = wrongExpectedVersion('s', 3, 5);
    const back = fromWire(JSON.parse(JSON.stringify(e.toWire())));
    expect(back).toBeInstanceOf(EdgelogError);
    expect(back.code).toBe('WrongExpectedVersion');
    expect(back.details).toEqual({ stream: 's', expected: 3, actual: 5 });
    expect(isEdgelogError({ code: 'Forbidden', message: 'x' }, 'Forbidden')).toBe(true);
    expect(isEdgelogError(new Error('x'))).toBe(false);
    expect(toWireError(new Error('boom'))).toEqual({ code: 'Internal', message: 'boom' });
    expect(httpStatusOf.PayloadTooLarge).toBe(413);
  });
});

describe('utf8Length', () => {
  it('counts the bytes UTF-8 would use', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        expect(utf8Length(s)).toBe(Buffer.byteLength(s, 'utf8'));
      }),
    );
    // Binary strings are slow to generate: seconds on a loaded machine, not a hang.
  }, 60_000);
});
