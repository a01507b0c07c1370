import { describe, expect, it } from 'vitest';
import { isUsableSnapshot, shouldSnapshot, snapshotKey } from './snapshot.ts';

describe('snapshot policy', () => {
  it('snapshots every N events, crossing a multiple', () => {
    const p = { stateVersion: 1, every: 100 };
    expect(shouldSnapshot(p, { version: 99, snapshotVersion: 0, replayed: 99 })).toBe(false);
    expect(shouldSnapshot(p, { version: 100, snapshotVersion: 0, replayed: 100 })).toBe(true);
    expect(shouldSnapshot(p, { version: 105, snapshotVersion: 99, replayed: 6 })).toBe(true);
    expect(shouldSnapshot(p, { version: 150, snapshotVersion: 100, replayed: 50 })).toBe(false);
  });
  it('snapshots after a slow load and never behind the stored one', () => {
    const p = { stateVersion: 1, afterReplayOf: 50 };
    expect(shouldSnapshot(p, { version: 60, snapshotVersion: 0, replayed: 60 })).toBe(true);
    expect(shouldSnapshot(p, { version: 60, snapshotVersion: 0, replayed: 50 })).toBe(false);
    expect(shouldSnapshot(p, { version: 60, snapshotVersion: 60, replayed: 0 })).toBe(false);
  });
  it('ignores snapshots of another state version', () => {
    const snap = { stream: 's', version: 3, stateVersion: 1, state: {} };
    expect(isUsableSnapshot({ stateVersion: 1 }, snap)).toBe(true);
    expect(isUsableSnapshot({ stateVersion: 2 }, snap)).toBe(false);
    expect(isUsableSnapshot({ stateVersion: 2 }, undefined)).toBe(false);
    expect(snapshotKey('s', 2)).toBe('s@2');
  });
});
