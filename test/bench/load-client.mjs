// The load generator's side of the edge benchmarks, kept cheap: it runs on the same cores as
// the server it measures, so every microsecond it spends is taken from the server. It sends the
// same bytes a plain client would (method, path, headers, JSON body); only its own work shrinks.
import { randomFillSync } from 'node:crypto';
import net from 'node:net';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const pool = Buffer.alloc(16 * 1024);
let poolAt = pool.length;

/**
 * A time-ordered UUIDv7 in the layout of core's `uuidv7` (48 bits of milliseconds, version 7,
 * a 12-bit counter within the millisecond, the variant, 62 random bits), with the random bits
 * taken from a pooled buffer instead of one `randomBytes` call per id.
 */
let lastMs = -1;
let counter = 0;
export function uuidv7(ms = Date.now()) {
  if (poolAt + 10 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const r = pool;
  const i = poolAt;
  poolAt += 10;
  // As core's: a 12-bit counter within a millisecond, from a random start below 2048.
  if (ms > lastMs || ms < lastMs - 10_000) {
    lastMs = ms;
    counter = ((r[i] & 0x07) << 8) | r[i + 1];
  } else if (counter < 0xfff) counter++;
  else {
    lastMs++;
    counter = ((r[i] & 0x07) << 8) | r[i + 1];
  }
  const t = lastMs.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8)}-${HEX[0x70 | (counter >> 8)]}${HEX[counter & 0xff]}-${HEX[0x80 | (r[i + 2] & 0x3f)]}${HEX[r[i + 3]]}-${HEX[r[i + 4]]}${HEX[r[i + 5]]}${HEX[r[i + 6]]}${HEX[r[i + 7]]}${HEX[r[i + 8]]}${HEX[r[i + 9]]}`;
}

/**
 * One keep-alive HTTP/1.1 connection to a loopback server, one request at a time: the request
 * is written as one string, the response read by hand (status, Content-Length or chunked body).
 * Cheaper than node:http's agent, parser and streams per request.
 */
export class Connection {
  #port;
  /** The open socket and the promise of its connection, or undefined before the first request. */
  #socket;
  #connected;
  #buf = '';
  #pending;

  constructor(port) {
    this.#port = port;
  }

  /**
   * Resolves with the status and body text. A kept-alive connection the server closed while
   * idle fails the request before any answer: it is sent once more on a new connection (the
   * benchmark's appends are idempotent by event id, so even a request that did land is safe).
   */
  async request(method, path, headers, body) {
    const reused = this.#socket !== undefined;
    try {
      return await this.#send(method, path, headers, body);
    } catch (e) {
      if (!reused || !e.beforeAnswer) throw e;
      return this.#send(method, path, headers, body);
    }
  }

  async #send(method, path, headers, body) {
    if (this.#pending) throw new Error('one request at a time per connection');
    if (!this.#socket) this.#open();
    const socket = this.#socket;
    await this.#connected;
    let head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1:${this.#port}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    return new Promise((resolve, reject) => {
      if (this.#socket !== socket) {
        reject(Object.assign(new Error('connection closed'), { beforeAnswer: true }));
        return;
      }
      this.#pending = { resolve, reject };
      socket.write(`${head}\r\n${body}`);
    });
  }

  close() {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #open() {
    const s = net.connect({ host: '127.0.0.1', port: this.#port, noDelay: true });
    this.#socket = s;
    this.#buf = '';
    this.#connected = new Promise((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    this.#connected.catch(() => undefined);
    s.setEncoding('latin1');
    // Events of a socket this connection has left behind are ignored.
    const fail = (e) => {
      if (this.#socket !== s) return;
      e.beforeAnswer = this.#buf === '';
      this.#socket = undefined;
      this.#buf = '';
      const p = this.#pending;
      this.#pending = undefined;
      p?.reject(e);
    };
    s.on('error', fail);
    s.on('close', () => fail(new Error('connection closed')));
    s.on('end', () => {
      if (this.#socket === s && !this.#pending) fail(new Error('connection closed'));
    });
    s.on('data', (d) => {
      if (this.#socket !== s) return;
      this.#buf += d;
      this.#parse();
    });
  }

  #parse() {
    const p = this.#pending;
    if (!p) return;
    const end = this.#buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buf.slice(0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let body;
    if (length) {
      const stop = end + 4 + Number(length[1]);
      if (this.#buf.length < stop) return;
      body = this.#buf.slice(end + 4, stop);
      this.#buf = this.#buf.slice(stop);
    } else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
      const last = this.#buf.indexOf('\r\n0\r\n\r\n', end);
      if (last < 0) return;
      body = this.#buf.slice(end + 4, last);
      this.#buf = this.#buf.slice(last + 7);
    } else {
      body = '';
      this.#buf = this.#buf.slice(end + 4);
    }
    this.#pending = undefined;
    p.resolve({ status, body });
  }
}
