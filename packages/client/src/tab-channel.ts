import type { ClientStatus, RejectionNotice, Withdrawal } from './status.ts';

/** What the workers of one database's tabs tell each other on their BroadcastChannel. */
type ChannelMessage =
  | { t: 'write'; tail: number }
  | { t: 'status'; s: ClientStatus }
  | { t: 'rejected'; r: RejectionNotice }
  | { t: 'withdrawn'; w: Withdrawal[] }
  | { t: 'hello' }
  /** The answer to a `hello` from a tab with nothing to announce: it exists. */
  | { t: 'here' };

/** What a tab does with what another tab told it. */
export interface TabChannelHandlers {
  /** Another tab wrote the log up to `tail`. */
  write(tail: number): void;
  /** The leading tab's status. */
  status(status: ClientStatus): void;
  /** The leading tab's sync engine reported a rejected command. */
  rejected(notice: RejectionNotice): void;
  /** The leading tab took pending events out of the log (a refusal or a replay). */
  withdrawn(list: Withdrawal[]): void;
  /** This tab's status, which it announces when it leads. */
  current(): ClientStatus;
}

/**
 * The tabs of one database, as one tab's worker hears and tells them. Until another tab's worker
 * has been heard, nothing but the first `hello` is posted: a post costs about 0.17 ms of the
 * worker's thread in Chromium (measured), as much as a tenth of an append, and a tab alone has
 * nobody to tell. Every tab answers a `hello`, and a tab that hears its first peer announces its
 * tail then, which covers whatever it did not announce while it was alone.
 */
export class TabChannel {
  readonly #channel: BroadcastChannel | undefined;
  #peers = false;
  /** The log's tail after the last write this tab heard of. */
  #lastTail = 0;

  /** Opens the channel `name` and says hello (nothing where BroadcastChannel is missing). */
  constructor(
    name: string,
    private readonly handlers: TabChannelHandlers,
  ) {
    if (typeof BroadcastChannel === 'undefined') return;
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = (m: MessageEvent<ChannelMessage>) => this.#heard(m.data);
    this.#post({ t: 'hello' });
  }

  /** Whether another tab's worker has been heard on the channel. */
  get peers(): boolean {
    return this.#peers;
  }

  /** Notes a write up to `tail`: every write the tab hears of, its own and the others'. */
  wrote(tail: number): void {
    this.#lastTail = Math.max(this.#lastTail, tail);
  }

  /** Tells the other tabs that this tab wrote the log up to `tail`. */
  tellWrite(tail: number): void {
    this.#post({ t: 'write', tail });
  }

  /** Tells the other tabs the leading tab's status. */
  tellStatus(status: ClientStatus): void {
    this.#post({ t: 'status', s: status });
  }

  /** Tells the other tabs of pending events taken out of the log. */
  tellWithdrawn(list: Withdrawal[]): void {
    this.#post({ t: 'withdrawn', w: list });
  }

  /** Tells the other tabs of a rejected command. */
  tellRejected(notice: RejectionNotice): void {
    this.#post({ t: 'rejected', r: notice });
  }

  close(): void {
    this.#channel?.close();
  }

  #heard(m: ChannelMessage): void {
    const wasAlone = !this.#peers;
    this.#peers = true;
    if (m.t === 'hello') {
      // A new tab. It read the log before it said hello, so the tail tells it of everything
      // written since (this tab did not announce its writes while it was alone); any answer
      // also tells it that this tab exists, so that it announces its own writes from now on.
      this.#announce(true);
      return;
    }
    // Another tab answered this tab's hello: what this tab wrote, pulled or decided while it
    // believed it was alone went unannounced.
    if (wasAlone) this.#announce(false);
    switch (m.t) {
      case 'write':
        this.handlers.write(m.tail);
        break;
      case 'status':
        this.handlers.status(m.s);
        break;
      case 'rejected':
        this.handlers.rejected(m.r);
        break;
      case 'withdrawn':
        this.handlers.withdrawn(m.w);
        break;
      case 'here':
        break;
    }
  }

  /**
   * Tells the other tabs this tab's tail and, when it leads, its status. `answer`: a reply to a
   * `hello`, which says `here` when there is no tail to tell.
   */
  #announce(answer: boolean): void {
    if (this.#lastTail > 0) this.#post({ t: 'write', tail: this.#lastTail });
    else if (answer) this.#post({ t: 'here' });
    const status = this.handlers.current();
    if (status.leader) this.#post({ t: 'status', s: status });
  }

  #post(m: ChannelMessage): void {
    if (!this.#peers && m.t !== 'hello') return;
    try {
      this.#channel?.postMessage(m);
    } catch {
      // A closed channel: this worker is shutting down.
    }
  }
}
