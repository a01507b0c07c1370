import { randomId } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { CHUNK_CHARS, packEvents, sliceChunk, unpackChunk, versioned } from './packed.ts';

const event = (data: unknown, metadata: Record<string, unknown> = {}) => ({
  id: randomId(),
  type: 'Added',
  schemaVersion: 1,
  data,
  metadata,
});

describe('packed events', () => {
  it('packs a batch into one chunk that unpacks to the same events, author stamped', () => {
    const events = [event({ n: 1 }), event({ n: 2 }, { by: 'x' })];
    const packed = packEvents(events, '$author', 'alice', 200);
    expect(packed.ids).toEqual(events.map((e) => e.id));
    expect(packed.chunks).toHaveLength(1);
    const [chunk] = versioned(packed.chunks, 4);
    const out = unpackChunk('s-1', { ...chunk!, firstPosition: 10, recordedAt: 't' });
    expect(out.map((e) => [e.id, e.version, e.position, e.data, e.metadata])).toEqual([
      [events[0]!.id, 4, 10, { n: 1 }, { $author: 'alice' }],
      [events[1]!.id, 5, 11, { n: 2 }, { by: 'x', $author: 'alice' }],
    ]);
  });

  it('splits large batches into chunks a SQLite row can hold, with the same result', () => {
    const big = 'é'.repeat(50_000);
    const events = Array.from({ length: 30 }, (_, i) => event({ i, big }));
    for (const sent of [Number.POSITIVE_INFINITY, 100]) {
      const packed = packEvents(events, '$author', 'bob', sent);
      expect(packed.chunks.length).toBeGreaterThan(1);
      for (const c of packed.chunks) expect(c.events.length).toBeLessThanOrEqual(CHUNK_CHARS);
      const placed = versioned(packed.chunks, 1);
      let position = 1;
      const out = placed.flatMap((c) => {
        const e = unpackChunk('s', { ...c, firstPosition: position, recordedAt: 't' });
        position += c.count;
        return e;
      });
      expect(out.map((e) => [e.id, e.version, e.position, (e.data as { i: number }).i])).toEqual(
        events.map((e, i) => [e.id, i + 1, i + 1, i]),
      );
    }
  });

  it('reads a chunk from its middle', () => {
    const events = [event(1), event(2), event(3)];
    const [chunk] = versioned(packEvents(events, '$author', 'a').chunks, 5);
    const tail = sliceChunk({ ...chunk!, firstPosition: 20, recordedAt: 't' }, 7);
    expect(unpackChunk('s', tail).map((e) => [e.id, e.version, e.position])).toEqual([
      [events[2]!.id, 7, 22],
    ]);
  });

  it('refuses a stored chunk that does not hold what it says', () => {
    const [chunk] = versioned(packEvents([event(1), event(2)], '$author', 'a').chunks, 1);
    const at = { firstPosition: 1, recordedAt: 't' };
    const ok = JSON.parse(chunk!.events) as unknown[][];
    const bad =
      (events: unknown, count = 2) =>
      () =>
        unpackChunk('s', { ...chunk!, ...at, count, events: JSON.stringify(events) });
    expect(bad(ok, 3)).toThrow(/wrong count/);
    expect(bad({})).toThrow(/wrong count/);
    for (const broken of [
      [ok[0]![0], 'Added', 1, {}],
      [ok[0]![0], 'Added', 1, {}, {}, 'extra'],
      [1, 'Added', 1, {}, {}],
      [ok[0]![0], null, 1, {}, {}],
      [ok[0]![0], 'Added', 0, {}, {}],
      [ok[0]![0], 'Added', 1.5, {}, {}],
      [ok[0]![0], 'Added', '1', {}, {}],
      [ok[0]![0], 'Added', 1, {}, null],
      [ok[0]![0], 'Added', 1, {}, []],
      'not a tuple',
    ])
      expect(bad([ok[1], broken])).toThrow(/malformed/);
  });
});
