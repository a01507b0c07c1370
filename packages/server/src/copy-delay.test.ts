import { describe, expect, it } from 'vitest';
import { COPY_CHARS, COPY_DELAY_MS, COPY_EVENTS, copyDelay } from './stream-do.ts';

describe("the StreamDO's copy written behind", () => {
  it('waits a second for more commits, so a busy stream costs about one storage commit a second', () => {
    expect(COPY_DELAY_MS).toBe(1000);
    expect(copyDelay(1, 100)).toBe(COPY_DELAY_MS);
    expect(copyDelay(COPY_EVENTS - 1, COPY_CHARS - 1)).toBe(COPY_DELAY_MS);
  });

  it('is written at once when many events wait, or much text (large events), whatever their count', () => {
    expect(COPY_EVENTS).toBe(10_000);
    expect(copyDelay(COPY_EVENTS, 100)).toBe(0);
    expect(COPY_CHARS).toBeLessThanOrEqual(1_000_000);
    expect(copyDelay(20, COPY_CHARS)).toBe(0);
  });
});
