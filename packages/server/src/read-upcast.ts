import type { EventEnvelope, ServerMessage } from '@edgelog/core';
import { edgeConfig } from './config.ts';

/** What the registry looks at; the wire and stored envelope types both fit it. */
type Stored = { type: string; schemaVersion: number; data: unknown };

/**
 * Read-path upcasting (I8): every event a read answers with is shown in the current shape of
 * its type when the Worker's configuration (`configureEdge({ registry })`) defines the type.
 * Stored bytes never change; this runs on the way out only. An event whose stored data does
 * not fit its declared version cannot be upcast: it is answered as stored (with its old
 * `schemaVersion`, so a reader can tell) rather than failing the read and wedging every
 * reader behind it. Projections upcast inside their own guard and park such an event.
 */
export function upcastForRead<E extends Stored>(event: E): E {
  const registry = edgeConfig().registry;
  if (!registry) return event;
  try {
    return registry.upcast(event as unknown as EventEnvelope) as unknown as E;
  } catch {
    return event;
  }
}

export function upcastAllForRead<E extends Stored>(events: E[]): E[] {
  return edgeConfig().registry ? events.map(upcastForRead) : events;
}

/** A page (`{ events, ... }`) with its events upcast. */
export function upcastPage<P extends { events: Stored[] }>(page: P): P {
  return edgeConfig().registry ? { ...page, events: page.events.map(upcastForRead) } : page;
}

/** A WebSocket message with the events it carries upcast. */
export function upcastMessage(message: ServerMessage): ServerMessage {
  return message.type === 'events' ? upcastPage(message) : message;
}
