import {
  ClientMessage,
  error,
  type ServerMessage,
  toWireError,
  validationError,
  type WireError,
} from '@edgelog/core';
import { TOKEN_EXPIRED } from './auth.ts';
import { upcastMessage } from './read-upcast.ts';

/**
 * A client's WebSocket message, read the same way by the SequencerDO and the StreamDO:
 * malformed JSON or a message the protocol does not know is an error to send back (the
 * socket keeps serving), naming the field.
 */
export function readClientMessage(
  raw: string | ArrayBuffer,
): { message: ClientMessage } | { error: WireError } {
  try {
    const parsed = ClientMessage.safeParse(
      JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw)),
    );
    if (parsed.success) return { message: parsed.data };
    return {
      error: validationError(
        parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      ).toWire(),
    };
  } catch (e) {
    return {
      error:
        e instanceof SyntaxError
          ? validationError([{ path: '', message: 'malformed JSON' }]).toWire()
          : toWireError(e),
    };
  }
}

/** Sends a server message, its events upcast to the current shape; a closed socket is ignored. */
export function sendTo(ws: WebSocket, message: ServerMessage): void {
  try {
    ws.send(JSON.stringify(upcastMessage(message)));
  } catch {
    // The socket closed under us; its close handler cleans up.
  }
}

/** Answers a `ping`, echoing its `at` when it has one. */
export function sendPong(ws: WebSocket, message: { at?: number | undefined }): void {
  sendTo(ws, message.at === undefined ? { type: 'pong' } : { type: 'pong', at: message.at });
}

/** A subscription whose filter would take the socket's attachment over its size limit. */
export const filterTooLarge = (): WireError =>
  validationError([{ path: 'filter', message: 'subscription filter too large' }]).toWire();

/**
 * Ends a socket whose token has expired as a refused `auth` is ended: an Unauthorized error,
 * then close 1008. The client SDK takes either as the end of its live connection and opens a
 * new one, with a fresh token, from the last position it applied.
 */
export function closeExpired(ws: WebSocket): void {
  sendTo(ws, { type: 'error', error: error('Unauthorized', TOKEN_EXPIRED).toWire() });
  try {
    ws.close(1008, TOKEN_EXPIRED);
  } catch {
    // already closed
  }
}

const NO_AUTH = 'no auth message before the heartbeat';

/**
 * A heartbeat found a socket that has not authenticated: the first marks it (true: save its
 * state), the next closes it with 1008. A socket gets one to two heartbeat periods to send its
 * `auth` message; one that never does holds nothing open for long (it is not charged to a store).
 */
export function awaitAuth(ws: WebSocket, state: { waiting?: true | undefined }): boolean {
  if (!state.waiting) {
    state.waiting = true;
    return true;
  }
  sendTo(ws, { type: 'error', error: error('Unauthorized', NO_AUTH).toWire() });
  try {
    ws.close(1008, NO_AUTH);
  } catch {
    // already closed
  }
  return false;
}
