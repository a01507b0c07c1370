import { coveredTo, type PullResponse } from './wire.ts';

/** A page of a pull, with the cursor it was read after and how far it covered. */
export type Pulled = PullResponse & { after: number; coveredTo: number };

/**
 * Pages fetched ahead of the writes, in order, while at most `bound` events wait. A page
 * fetched from the wrong place is harmless (applyPulled applies a page whole only when it was
 * read after its cursor; see `pageTail`): `restart` drops what waits and fetches from where
 * the writes got to.
 */
export class PullAhead {
  readonly #pages: Pulled[] = [];
  #held = 0;
  #ended = false;
  #error: { e: unknown } | undefined;
  #inflight = false;
  #generation = 0;
  #wake: (() => void) | undefined;

  constructor(
    private readonly pull: (after: number) => Promise<PullResponse>,
    private readonly limit: number,
    private readonly bound: number,
    private from: number,
  ) {
    this.#pump();
  }

  #pump(): void {
    if (this.#inflight || this.#ended || this.#error || this.#held >= this.bound) return;
    this.#inflight = true;
    const generation = this.#generation;
    const after = this.from;
    this.pull(after).then(
      (page) => {
        if (generation !== this.#generation) return;
        this.#inflight = false;
        const covered = coveredTo(page, after, this.limit);
        this.#pages.push({ ...page, after, coveredTo: covered });
        this.#held += page.events.length;
        if (covered >= page.head || covered === this.from) this.#ended = true;
        else this.from = covered;
        this.#notify();
        this.#pump();
      },
      (e: unknown) => {
        if (generation !== this.#generation) return;
        this.#inflight = false;
        this.#error = { e };
        this.#notify();
      },
    );
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next pages in order: at least one, then more while they fit in `max` events. */
  async take(max: number): Promise<Pulled[]> {
    while (this.#pages.length === 0) {
      if (this.#error) throw this.#error.e;
      if (this.#ended) return [];
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    const out = [this.#pages.shift()!];
    let n = out[0]!.events.length;
    while (this.#pages.length > 0 && n + this.#pages[0]!.events.length <= max) {
      const page = this.#pages.shift()!;
      n += page.events.length;
      out.push(page);
    }
    this.#held -= n;
    this.#pump();
    return out;
  }

  restart(from: number): void {
    this.close();
    this.#ended = false;
    this.from = from;
    this.#pump();
  }

  /** Drops what waits; a fetch in flight is ignored when it lands. */
  close(): void {
    this.#generation++;
    this.#pages.length = 0;
    this.#held = 0;
    this.#inflight = false;
    this.#ended = true;
    this.#error = undefined;
  }
}
