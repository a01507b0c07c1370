import type { EventEnvelope } from '@edgelog/core';
import type { StoredEvent } from './db.ts';

/**
 * An envelope of the local log. `position` is the local position (the local log's order);
 * `serverPosition` is set once the server confirmed the event, `pending` until then.
 */
export type LocalEnvelope<Type extends string = string, Data = unknown> = EventEnvelope<Type, Data> & {
  position: number;
  serverPosition?: number;
  pending: boolean;
};

export function toEnvelope(e: StoredEvent): LocalEnvelope {
  const out: LocalEnvelope = {
    id: e.id,
    stream: e.stream,
    type: e.type,
    schemaVersion: e.schemaVersion,
    data: e.data,
    metadata: e.metadata,
    version: e.version,
    position: e.lp,
    recordedAt: e.recordedAt,
    pending: e.position === undefined,
  };
  if (e.position !== undefined) out.serverPosition = e.position;
  return out;
}
