import type { ExpectedVersion } from '@edgelog/core';
import type { Op } from './checker.ts';

export interface WriterContext {
  url: string;
  store: string;
  token: string;
  record(op: Op): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A plain HTTP client with no SDK, as a Jepsen client would be: appends to its own streams with
 * the version it last saw (or `any`), retries a lost answer with the same event ids, and
 * records each operation as ok (200 with positions), fail (a definite 4xx) or unknown.
 */
export class HttpWriter {
  #seq = 0;
  readonly #versions = new Map<string, number>();

  constructor(
    readonly name: string,
    private readonly ctx: WriterContext,
    private readonly random: () => number,
  ) {}

  async step(): Promise<void> {
    const stream = `http-${this.name}-${Math.floor(this.random() * 2)}`;
    const id = `${this.name}-${++this.#seq}`;
    const count = 1 + Math.floor(this.random() * 3);
    const eventIds = Array.from({ length: count }, () => crypto.randomUUID());
    // A writer that lost an answer does not know the version: it sometimes appends with `any`.
    const known = this.#versions.get(stream);
    const expectedVersion: ExpectedVersion =
      known === undefined || this.random() < 0.3 ? 'any' : known === 0 ? 'no_stream' : known;
    const body = JSON.stringify({
      expectedVersion,
      events: eventIds.map((eid, i) => ({
        id: eid,
        type: 'Noted',
        data: { text: `${id}#${i}` },
        metadata: { op: id },
      })),
    });
    const op: Op = { id, client: this.name, kind: 'http', stream, status: 'unknown', eventIds };
    for (let attempt = 0; attempt < 6; attempt++) {
      let res: Response;
      try {
        res = await fetch(`${this.ctx.url}/v1/stores/${this.ctx.store}/streams/${stream}/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.ctx.token}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(20_000),
        });
      } catch {
        await sleep(50 + this.random() * 400);
        continue;
      }
      if (res.ok) {
        const answer = (await res.json()) as { version: number; positions: number[] };
        op.status = 'ok';
        op.positions = answer.positions;
        this.#versions.set(stream, answer.version);
        break;
      }
      const text = await res.text();
      if (res.status === 429 || res.status >= 500) {
        const after = Number(res.headers.get('retry-after') ?? '0');
        await sleep(Math.max(after * 1000, 50 + this.random() * 400));
        continue;
      }
      // A definite refusal: with these ids unstored (idempotency is answered before the version).
      op.status = 'fail';
      const actual = (JSON.parse(text) as { error?: { details?: { actual?: number } } }).error?.details
        ?.actual;
      if (typeof actual === 'number') this.#versions.set(stream, actual);
      break;
    }
    if (op.status === 'unknown') this.#versions.delete(stream);
    this.ctx.record(op);
  }
}
