/**
 * The appends' lane (see `appendLane` in worker.ts): the page posts `[LANE, id, text]` on the
 * worker's own channel, beside comlink's messages (objects, which the lane ignores, as comlink
 * ignores arrays), and the worker answers `[LANE, id, results]` or `[LANE, id, undefined, error]`.
 * The tag keeps arrays the app itself sends on its worker out of the lane.
 */
export const LANE = 'edgelog/append';

export const isLane = (data: unknown): data is [typeof LANE, number, ...unknown[]] =>
  Array.isArray(data) && data[0] === LANE;
