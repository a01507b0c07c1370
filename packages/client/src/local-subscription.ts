import { type ReadAllResult, type SubscribeOptions, Subscriber } from '@edgelog/core';
import type { LocalEnvelope } from './envelope.ts';
// Not core's `matchesFilter`: its module builds zod schemas, which the worker bundle leaves out.
import { matches } from './log-reads.ts';
import type { Withdrawal } from './status.ts';

/** The app's side of a subscription: events in batches, and withdrawals of delivered events. */
export interface SubscriptionHandlers {
  events(events: LocalEnvelope[]): unknown;
  withdrawn?: (withdrawn: Withdrawal[]) => unknown;
}

type ReadPage = (after: number, limit: number) => Promise<ReadAllResult>;

const BATCH = 500;

/**
 * One `subscribe` in a worker: the core `Subscriber` reads the local log in local order, and
 * this hands its events over in batches (one message per batch on the page's side) and tells
 * of withdrawals (`Withdrawal`), each after the event it takes back.
 *
 * A withdrawal is told when this subscription read the event: its position is at or below the
 * last event read, or a read in flight when the withdrawal was heard brings it; and at once when
 * it is at or before the position the subscription started from. One heard from another tab
 * after this tab read past the event's position may name an event that was gone before the
 * read: the app ignores ids it does not know. None is missed while the subscription is open.
 */
export class LocalSubscription {
  readonly #subscriber: Subscriber;
  #batch: LocalEnvelope[] = [];
  #notices: Withdrawal[] = [];
  /** Withdrawals heard while a read was in flight: decided when it returns. */
  #held: Withdrawal[] = [];
  #scheduled = false;
  /** Where the subscription started: events at or before it are never delivered. */
  readonly #from: number;
  /** The position of the last event read (handed over or about to be). */
  #read: number;
  /** The position of the last event handed over. */
  #delivered: number;
  #reading = 0;
  /** The last hand-over: the next waits for it. */
  #handedOver: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: SubscribeOptions,
    private readonly handlers: SubscriptionHandlers,
    read: ReadPage,
    onClose: () => void,
  ) {
    this.#from = options.after ?? 0;
    this.#read = this.#from;
    this.#delivered = this.#from;
    this.#subscriber = new Subscriber(
      options,
      (e) => {
        this.#batch.push(e as LocalEnvelope);
        this.#delivered = e.position ?? this.#delivered;
        if (this.#batch.length >= BATCH) return this.#flush();
        this.#schedule();
        return undefined;
      },
      (after, limit) => this.#readPage(read, after, limit),
      onClose,
    );
  }

  /** Reads up to the log's head; resolves once the catch-up has been handed over. */
  async start(): Promise<void> {
    this.#subscriber.wake();
    await this.#subscriber.caughtUp;
    await this.#flush();
  }

  wake(): void {
    this.#subscriber.wake();
  }

  close(): Promise<void> {
    return this.#subscriber.close();
  }

  /**
   * Pending events left the log: tells the app of those it was handed (or is about to be), and
   * of those at or before the position it started from (an app resuming a view it kept).
   */
  withdrawn(list: readonly Withdrawal[]): void {
    if (!this.handlers.withdrawn) return;
    for (const w of list) {
      if (!matches(this.options.filter, w)) continue;
      // `#read` starts at `#from`: a withdrawal at or before it is due at once.
      if (w.position <= this.#read) this.#notices.push(w);
      else if (this.#reading > 0) this.#held.push(w);
    }
    if (this.#notices.some((w) => w.position <= this.#delivered)) this.#schedule();
  }

  async #readPage(read: ReadPage, after: number, limit: number): Promise<ReadAllResult> {
    this.#reading++;
    try {
      const page = await read(after, limit);
      const last = page.events.at(-1)?.position;
      if (last !== undefined && last > this.#read) this.#read = last;
      return page;
    } finally {
      this.#reading--;
      if (this.#reading === 0 && this.#held.length > 0) {
        // The read was ordered before the withdrawal's transaction: what it reached was read.
        for (const w of this.#held.splice(0)) if (w.position <= this.#read) this.#notices.push(w);
      }
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // A handler's failure is the app's; it does not stop the subscription.
    queueMicrotask(() => void this.#flush().catch(() => undefined));
  }

  /**
   * Hands over the batch, then the withdrawals of events handed over, each call after the one
   * before it has returned: an async handler has stored an event before it hears it withdrawn,
   * and on the page, where the two handlers are two proxies on two ports, the order holds.
   */
  #flush(): Promise<void> {
    this.#scheduled = false;
    const events = this.#batch;
    this.#batch = [];
    const due = this.#notices.filter((w) => w.position <= this.#delivered);
    if (due.length > 0) this.#notices = this.#notices.filter((w) => w.position > this.#delivered);
    const run = this.#handedOver.then(async () => {
      if (events.length > 0) await this.handlers.events(events);
      if (due.length > 0) await this.handlers.withdrawn?.(due);
    });
    this.#handedOver = run.catch(() => undefined);
    return run;
  }
}
