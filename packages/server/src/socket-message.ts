import {
  ClientMessage,
  type ServerMessage,
  toWireError,
  validationError,
  type WireError,
} from '@edgelog/core';
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
