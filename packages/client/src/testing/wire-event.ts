import type { WireEvent } from '../wire.ts';

/** A confirmed event as the server sends it: stream `s`, version = position, empty data. */
export const wireEvent = (position: number, id = `w${position}`): WireEvent => ({
  id,
  stream: 's',
  type: 'T',
  schemaVersion: 1,
  data: {},
  metadata: {},
  version: position,
  position,
});
