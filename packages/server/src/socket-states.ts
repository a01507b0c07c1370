import type { ClientMessage } from '@edgelog/core';
import type { z } from 'zod';
import { type Claims, hasExpired } from './auth.ts';
import { awaitAuth, closeExpired, readClientMessage, sendTo } from './socket-message.ts';

/** What every Durable Object's socket state holds (the SequencerDO's and the StreamDO's). */
interface SocketStateBase {
  claims?: Claims | undefined;
  subs: unknown[];
  /** A heartbeat found it without a token: the next one closes it (see `awaitAuth`). */
  waiting?: true | undefined;
}

/**
 * The per-socket state of a Durable Object's hibernating WebSockets: one object per socket,
 * shared by every handler (a handler that awaits and then saves cannot write back an old copy
 * over what another saved meanwhile), kept in memory and in the socket's attachment, which
 * survives hibernation (the attachment is read once after a wake-up).
 */
export class SocketStates<S extends SocketStateBase> {
  readonly #states = new Map<WebSocket, S>();

  constructor(private readonly schema: z.ZodType<S>) {}

  load(ws: WebSocket): S | undefined {
    const cached = this.#states.get(ws);
    if (cached) return cached;
    const parsed = this.schema.safeParse(ws.deserializeAttachment());
    if (!parsed.success) return undefined;
    // A socket on its way out is not remembered (webSocketClose may have run already).
    if (ws.readyState === WebSocket.READY_STATE_OPEN) this.#states.set(ws, parsed.data);
    return parsed.data;
  }

  /**
   * Writes the state to the attachment, then keeps it in memory; false (and nothing kept) when
   * it is over the attachment's size limit (16 KiB). Never throws: a broadcast saves every
   * socket's cursors after a commit that is already durable.
   */
  save(ws: WebSocket, state: S): boolean {
    try {
      ws.serializeAttachment(state);
    } catch {
      return false;
    }
    if (ws.readyState === WebSocket.READY_STATE_OPEN) this.#states.set(ws, state);
    return true;
  }

  forget(ws: WebSocket): void {
    this.#states.delete(ws);
  }

  /**
   * A message a socket sent, with its state; undefined when it was answered here: a socket
   * without state is closed (1011), a message that does not parse gets an error, and any
   * message but `auth` on a socket whose token has expired expires it (`expired` runs first).
   */
  receive(
    ws: WebSocket,
    raw: string | ArrayBuffer,
    expired?: (ws: WebSocket) => void,
  ): { state: S; message: ClientMessage } | undefined {
    const state = this.load(ws);
    if (!state) {
      ws.close(1011, 'lost socket state');
      return undefined;
    }
    const read = readClientMessage(raw);
    if ('error' in read) {
      sendTo(ws, { type: 'error', error: read.error });
      return undefined;
    }
    if (read.message.type !== 'auth' && state.claims && hasExpired(state.claims)) {
      expired?.(ws);
      this.expire(ws, state);
      return undefined;
    }
    return { state, message: read.message };
  }

  /** The socket closed (`code` given: its close frame, which is answered) or failed. */
  closed(ws: WebSocket, code?: number, reason?: string): void {
    this.forget(ws);
    if (code === undefined) return;
    try {
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  /** A socket whose token has expired loses its claims and subscriptions, and is closed. */
  expire(ws: WebSocket, state: S): void {
    delete state.claims;
    state.subs = [];
    this.save(ws, state);
    closeExpired(ws);
    this.forget(ws);
  }

  /**
   * The alarm's round: a heartbeat to each socket, except that one whose token has expired is
   * closed (even if idle), and one that has not authenticated is marked, or closed at its
   * second heartbeat (`awaitAuth`). `expired` runs before a socket is expired.
   */
  heartbeat(sockets: readonly WebSocket[], head: number, expired?: (ws: WebSocket) => void): void {
    const now = Date.now() / 1000;
    for (const ws of sockets) {
      const state = this.load(ws);
      if (state?.claims && hasExpired(state.claims, now)) {
        expired?.(ws);
        this.expire(ws, state);
      } else if (state && !state.claims) {
        if (awaitAuth(ws, state)) this.save(ws, state);
        else this.forget(ws);
      } else sendTo(ws, { type: 'heartbeat', head });
    }
  }
}
