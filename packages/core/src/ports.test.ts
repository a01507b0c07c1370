import { describe, expect, it } from 'vitest';
import { EventId } from './envelope.ts';
import { randomId, uuidv7 } from './ports.ts';

describe('uuidv7', () => {
  it('makes ids the event schema accepts, with version 7 and the RFC variant', () => {
    for (let i = 0; i < 100; i++) {
      const id = randomId();
      expect(EventId.safeParse(id).success).toBe(true);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]);
    }
  });

  it('carries the time in its first 48 bits, so later ids sort later', () => {
    const t = Date.UTC(2026, 10, 26, 12, 0, 0);
    const id = uuidv7(t);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(t);
    const ids = [t, t + 1, t + 1000, t + 86_400_000].map((ms) => uuidv7(ms));
    expect([...ids].sort()).toEqual(ids);
  });

  it('differs between ids made in the same millisecond', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => uuidv7(1_700_000_000_000)));
    expect(ids.size).toBe(1000);
  });
});
