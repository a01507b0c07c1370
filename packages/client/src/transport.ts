import { ClientError } from './errors.ts';
import type { WireCommit } from './sync-plan.ts';
import {
  ErrorResponse,
  type PullResponse,
  PullResponse as PullSchema,
  type PushResponse,
  PushResponse as PushSchema,
  ServerMessage,
  type WireEvent,
} from './wire.ts';

export interface LiveHandlers {
  /**
   * Events in position order, possibly overlapping what was already applied. `cover`, when
   * the server says its scope left events out (a token limited to some streams): the message
   * holds every event the subscription sees in (`after`, `coveredTo`].
   */
  onEvents(events: WireEvent[], cover?: { after: number; coveredTo: number }): void;
  /** The server's head; a head past what was applied means a pull is due. */
  onHead(head: number): void;
  /** The connection ended (or failed to open). */
  onClose(reason: unknown): void;
}

export interface LiveConnection {
  close(): void;
}

/** The sync port: how the engine reaches the server. Tests wrap it to inject faults. */
export interface Transport {
  /** `signal` aborts the request (the engine gave up on it: a timeout, stop, offline). */
  push(commits: WireCommit[], signal?: AbortSignal): Promise<PushResponse>;
  pull(after: number, limit: number, signal?: AbortSignal): Promise<PullResponse>;
  live(after: number, handlers: LiveHandlers): LiveConnection;
}

/** Returns a token; `refresh` asks for a new one after the server refused the last. */
export type TokenSource = (refresh: boolean) => Promise<string>;

const paths = {
  push: (store: string) => `/v1/stores/${encodeURIComponent(store)}/sync/push`,
  pull: (store: string) => `/v1/stores/${encodeURIComponent(store)}/sync/pull`,
  ws: (store: string) => `/v1/stores/${encodeURIComponent(store)}/ws`,
};

async function errorOf(res: Response): Promise<ClientError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const parsed = ErrorResponse.safeParse(body);
  // A 429 from anything in front of the server (a proxy, a CDN's rate limit) may carry only the
  // standard header; edgelog's own body says the same in milliseconds, which wins.
  const waitMs = res.status === 429 ? retryAfterHeaderMs(res.headers.get('retry-after')) : undefined;
  if (parsed.success) {
    const { code, message, details } = parsed.data.error;
    const withWait =
      waitMs !== undefined && details?.retryAfterMs === undefined
        ? { ...details, retryAfterMs: waitMs }
        : details;
    return new ClientError(code as ClientError['code'], message, withWait);
  }
  const code = res.status === 401 ? 'Unauthorized' : res.status === 429 ? 'RateLimited' : 'Internal';
  return new ClientError(
    code,
    `HTTP ${res.status}`,
    waitMs === undefined ? undefined : { retryAfterMs: waitMs },
  );
}

/** `Retry-After` (delay-seconds or an HTTP date) in milliseconds; undefined when absent or unreadable. */
export function retryAfterHeaderMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * How long a live connection may stay silent before it is taken for dead, ms: the server sends
 * a heartbeat every 25 s, and a connection that died without a close (a laptop that slept, a
 * network that changed) never says so.
 */
export const LIVE_SILENCE_MS = 60_000;

/** HTTP push/pull and the WebSocket of protocol v1. */
export class HttpTransport implements Transport {
  /** The last live connection was refused its token: the next one asks for a new one. */
  #refreshLive = false;

  constructor(
    private readonly url: string,
    private readonly store: string,
    private readonly token: TokenSource,
    private readonly fetchFn: typeof fetch = (...args) => fetch(...args),
    private readonly socket: (url: string) => WebSocket = (url) => new WebSocket(url),
    private readonly liveSilenceMs = LIVE_SILENCE_MS,
  ) {}

  async #request(path: string, init: RequestInit): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.token(attempt > 0);
      let res: Response;
      try {
        res = await this.fetchFn(new URL(path, this.url), {
          ...init,
          headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
        });
      } catch (e) {
        throw new ClientError('Offline', `network error: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (res.status === 401 && attempt === 0) continue;
      if (!res.ok) throw await errorOf(res);
      return res.json();
    }
  }

  async push(commits: WireCommit[], signal?: AbortSignal): Promise<PushResponse> {
    const body = await this.#request(paths.push(this.store), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ commits }),
      ...(signal ? { signal } : {}),
    });
    const parsed = PushSchema.safeParse(body);
    if (!parsed.success) throw new ClientError('Internal', `bad push answer: ${parsed.error.message}`);
    return parsed.data;
  }

  async pull(after: number, limit: number, signal?: AbortSignal): Promise<PullResponse> {
    const body = await this.#request(`${paths.pull(this.store)}?after=${after}&limit=${limit}`, {
      method: 'GET',
      ...(signal ? { signal } : {}),
    });
    const parsed = PullSchema.safeParse(body);
    if (!parsed.success) throw new ClientError('Internal', `bad pull answer: ${parsed.error.message}`);
    return parsed.data;
  }

  live(after: number, handlers: LiveHandlers): LiveConnection {
    let ws: WebSocket | undefined;
    let closed = false;
    let ended = false;
    let silence: ReturnType<typeof setTimeout> | undefined;
    const end = (reason: unknown) => {
      clearTimeout(silence);
      if (ended) return;
      ended = true;
      handlers.onClose(reason);
    };
    // Every message (heartbeats included) proves the connection alive for another while.
    const alive = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        ws?.close();
        end(`no message from the server in ${this.liveSilenceMs} ms`);
      }, this.liveSilenceMs);
    };
    const refresh = this.#refreshLive;
    this.#refreshLive = false;
    void this.token(refresh).then(
      (token) => {
        if (closed) return end('closed');
        const wsUrl = new URL(paths.ws(this.store), this.url);
        wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
        ws = this.socket(wsUrl.toString());
        alive();
        ws.onopen = () => {
          ws?.send(JSON.stringify({ type: 'auth', token }));
          ws?.send(JSON.stringify({ type: 'subscribe', id: 'all', after }));
        };
        ws.onmessage = (m) => {
          if (ended) return;
          alive();
          let data: unknown;
          try {
            data = JSON.parse(String(m.data));
          } catch {
            return;
          }
          const parsed = ServerMessage.safeParse(data);
          if (!parsed.success) return;
          const msg = parsed.data;
          switch (msg.type) {
            case 'events':
              // A message with no gaps is checked by its positions, as an unfiltered page is.
              handlers.onEvents(
                msg.events,
                msg.filtered && msg.after !== undefined && msg.coveredTo !== undefined
                  ? { after: msg.after, coveredTo: msg.coveredTo }
                  : undefined,
              );
              break;
            case 'ready':
            case 'heartbeat':
              handlers.onHead(msg.head);
              break;
            case 'caught-up':
              handlers.onHead(msg.position);
              break;
            case 'error':
              // A refused token (expired, say) is not offered again: the next connection asks
              // the token source for a new one, as a refused HTTP request does.
              if (msg.error.code === 'Unauthorized') this.#refreshLive = true;
              ws?.close();
              end(new ClientError(msg.error.code as ClientError['code'], msg.error.message));
              break;
            case 'pong':
              break;
          }
        };
        ws.onclose = (ev) => {
          // 1008 (policy): the server closed over the token without saying more.
          if (ev.code === 1008) this.#refreshLive = true;
          end(`closed ${ev.code}`);
        };
        ws.onerror = () => end('socket error');
      },
      (e: unknown) => end(e),
    );
    return {
      close() {
        closed = true;
        ws?.close();
        end('closed');
      },
    };
  }
}
