import { decodeRecord, finalize, type LogDb, type StoredEvent } from '../db.ts';

/**
 * Test helpers that write the local log by hand (not exported from `@edgelog/client/testing`):
 * the records a sync would leave, without a server.
 */

/** An id that names its local position. */
export const lpId = (lp: number) => `00000000-0000-4000-8000-${lp.toString(16).padStart(12, '0')}`;

/** A stored event at local position `lp`; `settled` gives it the same server position. */
export function storedEvent(
  lp: number,
  stream: string,
  version: number,
  { settled = true, id = lpId(lp), data = { lp } }: { settled?: boolean; id?: string; data?: unknown } = {},
): StoredEvent {
  const e: StoredEvent = {
    id,
    stream,
    type: 'Noted',
    schemaVersion: 1,
    data,
    metadata: {},
    version,
    lp,
    recordedAt: '2026-01-01T00:00:00.000Z',
  };
  if (settled) e.position = lp;
  return e;
}

/** Settles the record at `key` as a pull that covered it does: its commits go, its events get positions. */
export async function settleRecord(db: LogDb, key: number): Promise<void> {
  const tx = db.transaction('log', 'readwrite');
  const rec = decodeRecord((await tx.store.get(key))!);
  delete rec.commits;
  for (const e of rec.events) e.position = e.lp;
  await tx.store.put(finalize(rec));
  await tx.done;
}
