import type { WireError } from '@edgelog/core';

/** A command or append the server refused for good: its events left the optimistic view. */
export interface RejectionNotice {
  commitId: string;
  stream: string;
  error: WireError;
  /** The remembered command, when the append came from `execute`. */
  command?: { decider: string; command: unknown };
  /** Ids of the events that were removed. */
  eventIds: string[];
  at: string;
}

/**
 * A pending event taken out of the local log after `subscribe` may have delivered it: its
 * commit was refused for good (`rejected`, also told by `onRejected`), or its command was
 * decided again on the server's history (`replayed`: new events, with new ids, replace it).
 */
export interface Withdrawal {
  id: string;
  stream: string;
  type: string;
  /** Its local position: where `subscribe` delivered it. */
  position: number;
  reason: 'rejected' | 'replayed';
  commitId: string;
}

/** The client's sync status, as one subscribable value. */
export interface ClientStatus {
  /** What the page last reported (`navigator.onLine` and its events). */
  online: boolean;
  /** This tab's worker is the one that syncs. */
  leader: boolean;
  /** A push/pull round is running. */
  syncing: boolean;
  /** The WebSocket is open. */
  live: boolean;
  /** Local commits not yet acknowledged by the server. */
  pending: number;
  /** Last server position applied to the local log (every event up to it is local). */
  lastConfirmedPosition: number;
  /** The server's head when last seen. */
  head: number;
  lastError: WireError | undefined;
  lastRejection: RejectionNotice | undefined;
  /** Catch-up of the current pull: server events applied / to apply. */
  catchUp: { processed: number; total: number };
}

export const initialStatus = (online: boolean): ClientStatus => ({
  online,
  leader: false,
  syncing: false,
  live: false,
  pending: 0,
  lastConfirmedPosition: 0,
  head: 0,
  lastError: undefined,
  lastRejection: undefined,
  catchUp: { processed: 0, total: 0 },
});
