import { type EventEnvelope, error, toWireError } from '@edgelog/core';
import { z } from 'zod';
import { Claims, checkStore, checkStream, hasExpired, jwtSecret, verifyToken } from './auth.ts';
import type { ServerEnv } from './env.ts';
import { type LoggedChunk, unpackChunk } from './packed.ts';
import { filterTooLarge, sendPong, sendTo } from './socket-message.ts';
import { SocketStates } from './socket-states.ts';

/** Per-socket state of a stream subscriber, kept in the socket's attachment (survives hibernation). */
const StreamSocketState = z.object({
  store: z.string(),
  stream: z.string(),
  claims: z.optional(Claims),
  /** A heartbeat found it without a token: the next one closes it (see `awaitAuth`). */
  waiting: z.optional(z.literal(true)),
  subs: z.array(
    z.object({ id: z.string(), cursor: z.number().int().min(0), types: z.optional(z.array(z.string())) }),
  ),
});
type StreamSocketState = z.infer<typeof StreamSocketState>;

const HEARTBEAT_MS = 25_000;

/** What the sockets need of their StreamDO. */
export interface StreamSocketsHost {
  readonly ctx: DurableObjectState;
  readonly env: ServerEnv;
  /** The position of the stream's last committed event (0 when none). */
  lastPosition(): number;
  /** Runs `fn` in the stream's mutex, between appends. */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** At most `limit` of the stream's events after position `after`, the table synced with the log first. */
  readAfter(store: string, stream: string, after: number, limit: number): Promise<EventEnvelope[]>;
  /** Events per catch-up page (tests shrink it). */
  catchUpPage(): number;
}

/**
 * The hibernating WebSocket subscribers of one stream: authentication, catch-up from a
 * position in pages that appends interleave with, then live events after each commit, and
 * heartbeats (which also close sockets whose token expired or never came).
 */
export class StreamSockets {
  /**
   * Per-socket state, one object per socket shared by every handler, and kept in the socket's
   * attachment too (which survives hibernation): a handler that awaits and then saves cannot
   * write back an old copy over what another handler saved meanwhile.
   */
  private readonly states = new SocketStates(StreamSocketState);
  /** Subscriptions still catching up, per socket: id to the catch-up that owns it. */
  private readonly catchingUp = new Map<WebSocket, Map<string, symbol>>();

  constructor(private readonly host: StreamSocketsHost) {}

  /** Accepts a socket the Worker forwarded (its store, stream and verified claims in headers). */
  async accept(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket')
      return new Response('expected a WebSocket upgrade', { status: 426 });
    const claimsHeader = request.headers.get('x-edgelog-claims');
    const state: StreamSocketState = {
      store: request.headers.get('x-edgelog-store') ?? '',
      stream: request.headers.get('x-edgelog-stream') ?? '',
      subs: [],
    };
    if (claimsHeader) state.claims = Claims.parse(JSON.parse(claimsHeader));
    const pair = new WebSocketPair();
    this.host.ctx.acceptWebSocket(pair[1]);
    this.states.save(pair[1], state);
    if (state.claims) sendTo(pair[1], { type: 'ready', head: this.host.lastPosition() });
    if ((await this.host.ctx.storage.getAlarm()) === null)
      await this.host.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  /**
   * Heartbeats for the stream's sockets; `head` is the stream's last position. A socket whose
   * token has expired is closed instead, even if it is idle.
   */
  async heartbeat(): Promise<void> {
    const sockets = this.host.ctx.getWebSockets();
    this.states.heartbeat(sockets, this.host.lastPosition(), (ws) => this.catchingUp.get(ws)?.clear());
    if (sockets.length > 0) await this.host.ctx.storage.setAlarm(Date.now() + HEARTBEAT_MS);
  }

  async message(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const received = this.states.receive(ws, raw, (w) => this.catchingUp.get(w)?.clear());
    if (!received) return;
    const { state: socket, message } = received;
    switch (message.type) {
      case 'auth':
        try {
          const claims = await verifyToken(message.token, jwtSecret(this.host.env));
          checkStore(claims, socket.store);
          checkStream(claims, socket.stream);
          // Read again after the await: a catch-up may have registered a subscription meanwhile.
          const current = this.states.load(ws);
          if (!current) return;
          current.claims = claims;
          this.states.save(ws, current);
          sendTo(ws, { type: 'ready', head: this.host.lastPosition() });
        } catch (e) {
          sendTo(ws, { type: 'error', error: toWireError(e) });
          ws.close(1008, 'unauthorized');
        }
        return;
      case 'subscribe': {
        if (!socket.claims) {
          sendTo(ws, {
            type: 'error',
            subscription: message.id,
            error: error('Unauthorized', 'send an auth message first').toWire(),
          });
          return;
        }
        const { id, after = 0, filter } = message;
        const sub: StreamSocketState['subs'][number] = { id, cursor: after };
        if (filter?.types) sub.types = filter.types;
        // The subscription is kept in the socket's attachment once caught up: one that cannot
        // be (over the attachment's size limit) is refused now, before any catch-up.
        if (!fits(ws, { ...socket, subs: [...socket.subs.filter((s) => s.id !== id), sub] })) {
          ws.serializeAttachment(socket);
          sendTo(ws, { type: 'error', subscription: id, error: filterTooLarge() });
          return;
        }
        ws.serializeAttachment(socket);
        await this.catchUp(ws, socket, sub);
        return;
      }
      case 'unsubscribe':
        this.catchingUp.get(ws)?.delete(message.id);
        socket.subs = socket.subs.filter((s) => s.id !== message.id);
        this.states.save(ws, socket);
        return;
      case 'ping':
        sendPong(ws, message);
        return;
      default: {
        const never: never = message;
        return never;
      }
    }
  }

  /**
   * Sends a subscription the stream's events after its cursor, one page per turn of the
   * stream's mutex, so appends to the stream get in between pages of a long catch-up. Each
   * page is read after the last copy, with no commit in flight; the page that reaches the
   * stream's end sends `caught-up` and registers the subscription for live delivery in the
   * same turn, so the first live event is exactly the one after it. An unsubscribe, a second
   * subscribe with the same id or a closed socket ends the catch-up.
   */
  private async catchUp(
    ws: WebSocket,
    socket: StreamSocketState,
    sub: StreamSocketState['subs'][number],
  ): Promise<void> {
    const token = Symbol(sub.id);
    const pending = this.catchingUp.get(ws) ?? new Map<string, symbol>();
    this.catchingUp.set(ws, pending);
    pending.set(sub.id, token);
    const current = () => pending.get(sub.id) === token && ws.readyState === WebSocket.READY_STATE_OPEN;
    try {
      for (let turn = 0; current(); turn++) {
        // A task between pages: the mutex alone hands over in microtasks, before any append
        // waiting on the runtime's event loop could get in.
        if (turn > 0) await new Promise((resolve) => setTimeout(resolve, 0));
        const done = await this.host.exclusive(async () => {
          if (!current()) return true;
          const state = this.states.load(ws);
          if (!state?.claims) return true;
          if (hasExpired(state.claims)) {
            this.expire(ws, state);
            return true;
          }
          const page = await this.host.readAfter(
            socket.store,
            socket.stream,
            sub.cursor,
            this.host.catchUpPage(),
          );
          const matching = page.filter((e) => !sub.types || sub.types.includes(e.type));
          if (matching.length > 0) sendTo(ws, { type: 'events', subscription: sub.id, events: matching });
          sub.cursor = page.at(-1)?.position ?? sub.cursor;
          if (page.length === this.host.catchUpPage()) return false;
          const fresh = this.states.load(ws);
          if (!fresh?.claims) return true;
          const before = fresh.subs;
          fresh.subs = [...fresh.subs.filter((s) => s.id !== sub.id), sub];
          if (!this.states.save(ws, fresh)) {
            // Other subscriptions grew the attachment meanwhile: refused, and nothing kept.
            fresh.subs = before;
            sendTo(ws, { type: 'error', subscription: sub.id, error: filterTooLarge() });
            return true;
          }
          sendTo(ws, { type: 'caught-up', subscription: sub.id, position: sub.cursor });
          return true;
        });
        if (done) break;
      }
    } finally {
      if (pending.get(sub.id) === token) pending.delete(sub.id);
      if (pending.size === 0) this.catchingUp.delete(ws);
    }
  }

  /** The socket closed (`code` given: its close frame, answered) or failed. */
  closed(ws: WebSocket, code?: number, reason?: string): void {
    this.states.closed(ws, code, reason);
  }

  /** Sends a commit's events to the stream's live subscriptions (after it is durable in the log). */
  broadcast(stream: string, logged: LoggedChunk[]): void {
    const sockets = this.host.ctx.getWebSockets();
    if (sockets.length === 0) return;
    const envelopes = logged.flatMap((c) => unpackChunk(stream, c));
    const last = envelopes.at(-1)?.position ?? 0;
    const now = Date.now() / 1000;
    for (const ws of sockets) {
      const state = this.states.load(ws);
      if (!state?.claims || state.subs.length === 0) continue;
      if (hasExpired(state.claims, now)) {
        this.expire(ws, state);
        continue;
      }
      for (const sub of state.subs) {
        const events = envelopes.filter(
          (e) => (e.position ?? 0) > sub.cursor && (!sub.types || sub.types.includes(e.type)),
        );
        if (events.length > 0) sendTo(ws, { type: 'events', subscription: sub.id, events });
        sub.cursor = Math.max(sub.cursor, last);
      }
      this.states.save(ws, state);
    }
  }

  /** A socket whose token has expired: its catch-ups end, and SocketStates closes it. */
  private expire(ws: WebSocket, state: StreamSocketState): void {
    this.catchingUp.get(ws)?.clear();
    this.states.expire(ws, state);
  }
}

/** Writes `state` to the socket's attachment; false when it is over the size limit (16 KiB). */
function fits(ws: WebSocket, state: StreamSocketState): boolean {
  try {
    ws.serializeAttachment(state);
    return true;
  } catch {
    return false;
  }
}
