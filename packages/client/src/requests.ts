import type { Limits } from '@edgelog/core';
import { ClientError } from './errors.ts';

/** After this many timeouts in a row: a 64th of the batch, given 64 times the time. */
const MAX_SLOW = 6;

/**
 * The sync engine's requests to the server: each is given up after its time, or at once when
 * the engine stops or goes offline, even when the transport ignores the signal: nothing waits
 * for a network that does not answer. An answer that comes later is dropped (a push is
 * idempotent, a page is read again). Timeouts in a row halve what the next push or pull page
 * carries and double the time it is given, so a link too slow for a whole batch still drains;
 * a round that ends well starts afresh.
 */
export class Requests {
  #abort = new AbortController();
  /** Requests that timed out in a row. */
  #slow = 0;

  constructor(private readonly timeoutMs: number) {}

  /** Abandons the requests in flight; later ones run as usual. */
  abandon(reason: string): void {
    this.#abort.abort(reason);
    this.#abort = new AbortController();
  }

  /** A round ended well: full batches and times again. */
  succeeded(): void {
    this.#slow = 0;
  }

  /** `n` (a batch's events, commits or bytes) as the timeouts so far allow, at least 1. */
  part(n: number): number {
    return this.#slow === 0 ? n : Math.max(1, Math.floor(n / 2 ** this.#slow));
  }

  /** The limits of the next push. */
  budget(limits: Limits): Limits {
    if (this.#slow === 0) return limits;
    return {
      ...limits,
      maxCommitsPerPush: this.part(limits.maxCommitsPerPush),
      maxRequestBytes: this.part(limits.maxRequestBytes),
    };
  }

  run<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const outer = this.#abort.signal;
    const ms = this.timeoutMs * 2 ** this.#slow;
    const inner = new AbortController();
    return new Promise<T>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => fail(new ClientError('Offline', `request abandoned: ${String(outer.reason)}`));
      const done = () => {
        clearTimeout(timer);
        outer.removeEventListener('abort', onAbort);
      };
      const fail = (e: ClientError) => {
        done();
        inner.abort(e);
        reject(e);
      };
      if (outer.aborted) return onAbort();
      outer.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(() => {
        this.#slow = Math.min(this.#slow + 1, MAX_SLOW);
        fail(new ClientError('Timeout', `no answer from the server in ${ms} ms`));
      }, ms);
      let request: Promise<T>;
      try {
        request = call(inner.signal);
      } catch (e) {
        done();
        return reject(e);
      }
      request.then(
        (value) => {
          done();
          resolve(value);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
    });
  }
}
