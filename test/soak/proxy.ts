import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

/** Probabilities of each fault, per HTTP request or per WebSocket message from the server. */
export interface ProxyFaults {
  /** The request never reaches the server (the client's connection is cut). */
  dropRequest: number;
  /** The server acts, then the answer is lost (the client's connection is cut). */
  dropAnswer: number;
  /** The request reaches the server twice at once; the client gets the first answer. */
  duplicate: number;
  /** A copy of the request reaches the server again later, after newer requests (a stale replay). */
  lateDuplicate: number;
  /** A server message is delivered twice. */
  duplicateMessage: number;
  /** A server message is held back and delivered after the next one. */
  reorderMessage: number;
  /** An `events` message is cut in half and the socket dies (a WebSocket cut mid-batch). */
  cutSocket: number;
}

export const noFaults: ProxyFaults = {
  dropRequest: 0,
  dropAnswer: 0,
  duplicate: 0,
  lateDuplicate: 0,
  duplicateMessage: 0,
  reorderMessage: 0,
  cutSocket: 0,
};

/** Faults injected by kind, plus what the proxy saw: requests, server messages, the server down, 429s. */
export type FaultCounts = Record<
  keyof ProxyFaults | 'upstreamDown' | 'rateLimited' | 'requests' | 'messages',
  number
>;

const HOP_HEADERS = new Set([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
]);

/**
 * A loopback HTTP + WebSocket proxy between the clients and the edge server that injects the
 * faults of a bad network. Every decision draws from one seeded `random`, so a seed replays the
 * same sequence of decisions (their interleaving with the traffic is up to the scheduler).
 */
export class FaultProxy {
  faults: ProxyFaults = { ...noFaults };
  readonly counts: FaultCounts = {
    dropRequest: 0,
    dropAnswer: 0,
    duplicate: 0,
    lateDuplicate: 0,
    duplicateMessage: 0,
    reorderMessage: 0,
    cutSocket: 0,
    upstreamDown: 0,
    rateLimited: 0,
    requests: 0,
    messages: 0,
  };
  readonly #late = new Set<Promise<unknown>>();
  readonly #sockets = new Set<WebSocket>();
  #server: Server | undefined;
  readonly #wss = new WebSocketServer({ noServer: true });

  constructor(
    private readonly upstream: string,
    private readonly random: () => number,
  ) {}

  #hit(kind: keyof ProxyFaults): boolean {
    const p = this.faults[kind];
    if (p <= 0 || this.random() >= p) return false;
    this.counts[kind]++;
    return true;
  }

  /** Listens on 127.0.0.1:`port` (0 = any free port); resolves with the proxy's URL. */
  async listen(port: number): Promise<string> {
    const server = createServer((req, res) => {
      void this.#http(req, res);
    });
    server.on('upgrade', (req, socket, head) => {
      this.#wss.handleUpgrade(req, socket, head, (client) => this.#ws(req, client));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Waits for late duplicates still on their way. */
  async drain(): Promise<void> {
    while (this.#late.size > 0) await Promise.allSettled([...this.#late]);
  }

  /** Cuts every open WebSocket (as a restarting server or a lost network would). */
  cutAll(): void {
    for (const s of this.#sockets) s.terminate();
  }

  async close(): Promise<void> {
    this.cutAll();
    await this.drain();
    await new Promise<void>((resolve) => {
      if (!this.#server) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #forward(req: IncomingMessage, body: Buffer | undefined): Promise<Response> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && !HOP_HEADERS.has(k)) headers[k] = v;
    }
    const init: RequestInit = { method: req.method ?? 'GET', headers };
    if (body && body.length > 0) init.body = new Uint8Array(body);
    return fetch(new URL(req.url ?? '/', this.upstream), init);
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counts.requests++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
    const faulted = req.url?.startsWith('/v1/') ?? false;
    if (faulted && this.#hit('dropRequest')) {
      res.destroy();
      return;
    }
    try {
      const sends = [this.#forward(req, body)];
      if (faulted && this.#hit('duplicate')) sends.push(this.#forward(req, body));
      const [answer] = await Promise.all(
        sends.map((p) => p.then(async (r) => ({ r, text: await r.text() }))),
      );
      if (faulted && this.#hit('lateDuplicate')) {
        const delay = 50 + Math.floor(this.random() * 1500);
        const late: Promise<unknown> = new Promise((r) => setTimeout(r, delay))
          .then(() => this.#forward(req, body))
          .then((r) => r.text())
          .catch(() => undefined)
          .finally(() => this.#late.delete(late));
        this.#late.add(late);
      }
      if (faulted && this.#hit('dropAnswer')) {
        res.destroy();
        return;
      }
      const { r, text } = answer!;
      if (r.status === 429) this.counts.rateLimited++;
      const headers: Record<string, string> = {};
      r.headers.forEach((v, k) => {
        if (!HOP_HEADERS.has(k) && k !== 'content-encoding') headers[k] = v;
      });
      res.writeHead(r.status, headers);
      res.end(text);
    } catch {
      // The server is down (restarting): the client sees a cut connection.
      this.counts.upstreamDown++;
      res.destroy();
    }
  }

  #ws(req: IncomingMessage, client: WebSocket): void {
    const url = new URL(req.url ?? '/', this.upstream);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const headers: Record<string, string> = {};
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    const upstream = new WebSocket(url, { headers });
    this.#sockets.add(client);
    const queued: Array<{ data: WebSocket.RawData; binary: boolean }> = [];
    let held: { data: WebSocket.RawData; binary: boolean } | undefined;
    const end = () => {
      this.#sockets.delete(client);
      client.terminate();
      upstream.terminate();
    };
    client.on('message', (data, binary) => {
      if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary });
      else queued.push({ data, binary });
    });
    upstream.on('open', () => {
      for (const m of queued.splice(0)) upstream.send(m.data, { binary: m.binary });
    });
    upstream.on('message', (data, binary) => {
      if (client.readyState !== WebSocket.OPEN) return;
      this.counts.messages++;
      const text = String(data);
      if (!binary && text.startsWith('{"type":"events"') && this.#hit('cutSocket')) {
        const msg = JSON.parse(text) as { events: unknown[] };
        if (msg.events.length > 1) {
          msg.events = msg.events.slice(0, Math.floor(msg.events.length / 2));
          client.send(JSON.stringify(msg), () => end());
        } else end();
        return;
      }
      const send = (m: { data: WebSocket.RawData; binary: boolean }) =>
        client.send(m.data, { binary: m.binary });
      const now = { data, binary };
      if (held === undefined && this.#hit('reorderMessage')) {
        held = now;
        return;
      }
      send(now);
      if (this.#hit('duplicateMessage')) send(now);
      if (held) {
        send(held);
        held = undefined;
      }
    });
    client.on('close', end);
    client.on('error', end);
    upstream.on('close', end);
    upstream.on('error', end);
  }
}
