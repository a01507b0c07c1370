import { describe, expect, it, vi } from 'vitest';
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

  it('sorts ids made in one millisecond in the order they were made, past the counter running out', () => {
    const t = 1_700_000_000_000;
    // 5,000 ids in one millisecond: more than the 12-bit counter holds, so later ids borrow t+1, t+2.
    const ids = Array.from({ length: 5000 }, () => uuidv7(t));
    expect([...ids].sort()).toEqual(ids);
    const ms = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(ms(ids[0] as string)).toBe(t);
    expect(ms(ids.at(-1) as string)).toBeGreaterThan(t);
    expect(ms(ids.at(-1) as string)).toBeLessThanOrEqual(t + 3);
    for (const id of ids) expect(EventId.safeParse(id).success).toBe(true);
  });

  it('keeps the order when the clock steps back a little, and starts afresh at a time long before', () => {
    const t = 1_800_000_000_000;
    const a = uuidv7(t);
    const b = uuidv7(t - 500);
    expect(b > a).toBe(true);
    const old = uuidv7(t - 3_600_000);
    expect(Number.parseInt(old.replace(/-/g, '').slice(0, 12), 16)).toBe(t - 3_600_000);
  });

  it('differs between ids made in the same millisecond', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => uuidv7(1_700_000_000_000)));
    expect(ids.size).toBe(1000);
  });

  it('draws random bytes in blocks, each byte once, and stays random across refills', () => {
    const { crypto } = globalThis as unknown as { crypto: { getRandomValues(a: Uint8Array): Uint8Array } };
    const spy = vi.spyOn(crypto, 'getRandomValues');
    try {
      const ids = Array.from({ length: 2000 }, () => uuidv7(1_700_000_000_000));
      // 2,000 ids take 20,000 random bytes: 5 or 6 draws of 4 KiB, not 2,000 draws.
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(4);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(6);
      expect(new Set(ids).size).toBe(2000);
      // The random tails share no 10-byte run: no byte range was handed out twice.
      const tails = new Set(ids.map((id) => id.replace(/-/g, '').slice(12)));
      expect(tails.size).toBe(2000);
      for (const id of ids) expect(EventId.safeParse(id).success).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });
});
