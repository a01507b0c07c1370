import type { EventHandler, ReadAllResult, SubscribeOptions, Subscription } from './event-store.ts';

type ReadPage = (after: number, limit: number) => Promise<ReadAllResult>;

/**
 * Catch-up then live over any store that can read its global log in pages: it reads pages
 * until it reaches the head, reports `caughtUp`, then reads again whenever it is woken.
 * One cursor drives both phases, so the switch to live can neither skip nor repeat.
 */
export class Subscriber implements Subscription {
  readonly caughtUp: Promise<number>;
  #resolveCaughtUp!: (position: number) => void;
  #rejectCaughtUp!: (e: unknown) => void;
  #cursor: number;
  #closed = false;
  #dirty = true;
  #running: Promise<void> | undefined;
  #isCaughtUp = false;

  constructor(
    options: SubscribeOptions,
    private readonly handler: EventHandler,
    private readonly readPage: ReadPage,
    private readonly onClose: () => void,
    private readonly pageSize = 500,
  ) {
    this.#cursor = options.after ?? 0;
    this.caughtUp = new Promise<number>((resolve, reject) => {
      this.#resolveCaughtUp = resolve;
      this.#rejectCaughtUp = reject;
    });
    this.caughtUp.catch(() => undefined);
  }

  start(): void {
    this.wake();
  }

  /** Tells the subscriber that the log may have grown. */
  wake(): void {
    this.#dirty = true;
    if (this.#running || this.#closed) return;
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      if (this.#dirty && !this.#closed) this.wake();
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false;
        for (;;) {
          const before = this.#cursor;
          const page = await this.readPage(this.#cursor, this.pageSize);
          for (const event of page.events) {
            if (this.#closed) return;
            // A handler that returns nothing is not awaited: awaiting it would let microtasks
            // run between events, and a batching handler would flush after every event.
            const pending = this.handler(event);
            if (pending !== undefined) await pending;
            this.#cursor = event.position ?? this.#cursor;
          }
          // The page held every match up to `scannedTo` (the protocol's promise), which a
          // sparse filter reaches long before `head`: only `scannedTo` says how far it got.
          // A page that moved nothing (a store behind its own head) ends the round, not a spin.
          if (page.scannedTo > this.#cursor) this.#cursor = page.scannedTo;
          if (this.#cursor >= page.head || this.#cursor === before) break;
        }
        if (!this.#isCaughtUp) {
          this.#isCaughtUp = true;
          this.#resolveCaughtUp(this.#cursor);
        }
      }
    } catch (e) {
      this.#rejectCaughtUp(e);
      this.#closed = true;
      this.onClose();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.onClose();
    await this.#running;
  }
}
