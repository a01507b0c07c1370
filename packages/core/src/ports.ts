/** Ports: what core needs from a platform, passed in by the adapters. */

/** Returns the current time. Stores stamp `recordedAt` from it. */
export type Clock = () => Date;

/** Returns a new unique id (a UUID). */
export type IdSource = () => string;

export const systemClock: Clock = () => new Date();

const platformCrypto = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;

/** `crypto.randomUUID` where the platform has it (browsers, workers, Node 20). */
export const randomId: IdSource = () => {
  if (!platformCrypto?.randomUUID) throw new Error('crypto.randomUUID is not available; pass an IdSource');
  return platformCrypto.randomUUID();
};
