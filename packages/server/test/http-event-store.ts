import {
  type AppendOptions,
  AppendResponse,
  type AppendResult,
  ErrorResponse,
  type EventEnvelope,
  type EventHandler,
  type EventStore,
  error,
  fromWire,
  type NewEvent,
  paths,
  type ReadAllOptions,
  ReadAllResponse,
  type ReadAllResult,
  type ReadStreamOptions,
  ReadStreamResponse,
  type ReadStreamResult,
  ServerMessage,
  type SubscribeOptions,
  type Subscription,
} from '@edgelog/core';
import type { z } from 'zod';

export interface HttpEventStoreOptions {
  base: string;
  store: string;
  token: string;
  /** The transport: `exports.default.fetch` inside workerd, global fetch elsewhere. */
  fetch: (request: Request) => Promise<Response>;
}

/** An EventStore that talks to the edge server over HTTP, and its WebSocket for subscribe. */
export class HttpEventStore implements EventStore {
  constructor(private readonly options: HttpEventStoreOptions) {}

  async append(stream: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const body =
      options.expectedVersion === undefined
        ? { events }
        : { expectedVersion: options.expectedVersion, events };
    return this.request(AppendResponse, 'POST', paths.streamEvents(this.options.store, stream), body);
  }

  readStream(stream: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    const query = new URLSearchParams();
    if (options.from !== undefined) query.set('from', String(options.from));
    if (options.direction !== undefined) query.set('direction', options.direction);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    const path = `${paths.streamEvents(this.options.store, stream)}?${query}`;
    // The wire schema types optional fields as `T | undefined`; parsed JSON never holds undefined.
    return this.request(ReadStreamResponse, 'GET', path) as Promise<ReadStreamResult>;
  }

  readAll(options: ReadAllOptions = {}): Promise<ReadAllResult> {
    const query = new URLSearchParams();
    if (options.after !== undefined) query.set('after', String(options.after));
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.filter?.streamPrefix !== undefined) query.set('streamPrefix', options.filter.streamPrefix);
    if (options.filter?.types !== undefined) query.set('types', options.filter.types.join(','));
    return this.request(
      ReadAllResponse,
      'GET',
      `${paths.allEvents(this.options.store)}?${query}`,
    ) as Promise<ReadAllResult>;
  }

  subscribe(options: SubscribeOptions, handler: EventHandler): Subscription {
    let resolveCaughtUp!: (position: number) => void;
    let rejectCaughtUp!: (e: unknown) => void;
    const caughtUp = new Promise<number>((resolve, reject) => {
      resolveCaughtUp = resolve;
      rejectCaughtUp = reject;
    });
    caughtUp.catch(() => undefined);
    let closed = false;
    let delivery: Promise<void> = Promise.resolve();
    const enqueue = (fn: () => void | Promise<void>) => {
      delivery = delivery.then(() => (closed ? undefined : fn())).catch(() => undefined);
    };
    const socket = this.connect().then((ws) => {
      ws.addEventListener('message', (event) => {
        const parsed = ServerMessage.safeParse(JSON.parse(String(event.data)));
        if (!parsed.success) return;
        const message = parsed.data;
        if (message.type === 'events')
          for (const e of message.events) enqueue(() => handler(e as EventEnvelope));
        else if (message.type === 'caught-up') enqueue(() => resolveCaughtUp(message.position));
        else if (message.type === 'error') rejectCaughtUp(fromWire(message.error));
      });
      const subscribe: Record<string, unknown> = { type: 'subscribe', id: 'sub', after: options.after ?? 0 };
      if (options.filter) subscribe.filter = options.filter;
      ws.send(JSON.stringify(subscribe));
      return ws;
    });
    socket.catch(rejectCaughtUp);
    return {
      caughtUp,
      close: async () => {
        closed = true;
        const ws = await socket.catch(() => undefined);
        ws?.close(1000, 'closed');
        await delivery;
      },
    };
  }

  private async connect(): Promise<WebSocket> {
    const response = await this.options.fetch(
      new Request(`${this.options.base}${paths.ws(this.options.store)}`, {
        headers: { Upgrade: 'websocket', Authorization: `Bearer ${this.options.token}` },
      }),
    );
    const ws = response.webSocket;
    if (!ws) throw error('Internal', `WebSocket upgrade refused with ${response.status}`);
    ws.accept();
    return ws;
  }

  private async request<S extends z.ZodType>(
    schema: S,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<z.infer<S>> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${this.options.token}` } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { ...init.headers, 'content-type': 'application/json' };
    }
    const response = await this.options.fetch(new Request(`${this.options.base}${path}`, init));
    const json: unknown = await response.json();
    if (!response.ok) {
      const parsed = ErrorResponse.safeParse(json);
      throw parsed.success ? fromWire(parsed.data.error) : error('Internal', `HTTP ${response.status}`);
    }
    return schema.parse(json);
  }
}
