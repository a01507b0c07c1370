/** A tab hands the sync over at most this often, and looks for a tab to take it this often. */
const HAND_OVER_PAUSE_MS = 60_000;
const HAND_OVER_CHECK_MS = 2_000;

/** The part of Web Locks this uses. */
interface Locks {
  request(name: string, options: { signal?: AbortSignal }, fn: () => Promise<void>): Promise<void>;
  query?(): Promise<{ pending?: Array<{ name?: string }> }>;
}

/** One run of this tab as the syncing tab: callbacks of an earlier run check it is still theirs. */
export type Lease = object;

/** What leading means for the tab (WorkerCore). */
export interface LeaderHost {
  /** The tab is closed or stepped aside: it leads no more. */
  done(): boolean;
  /** Starts syncing under `lease` (the tab got the lock). */
  lead(lease: Lease): void;
  /** Stops syncing (the tab is handing the lock over). */
  stopLeading(): Promise<void>;
  /** Whether another tab was ever heard (where Web Locks cannot say who waits). */
  peers(): boolean;
}

/**
 * Which tab of a database syncs: the one holding the Web Lock `<name>:leader` (every tab asks
 * for it; the others wait in line). Without Web Locks, every tab leads.
 */
export class Leadership {
  #release: (() => void) | undefined;
  #lease: Lease | undefined;
  /** When this tab last handed the sync over, the check for a tab to take it, and a hand-over running. */
  #handedOverAt = Number.NEGATIVE_INFINITY;
  #check: ReturnType<typeof setInterval> | undefined;
  #handing: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly signal: AbortSignal,
    private readonly host: LeaderHost,
  ) {}

  /** Asks for the lock (again); the host leads once it is granted. */
  elect(): void {
    const locks = webLocks();
    if (!locks) {
      this.#start();
      return;
    }
    locks
      .request(`${this.name}:leader`, { signal: this.signal }, async () => {
        if (this.host.done()) return;
        await new Promise<void>((resolve) => {
          this.#release = resolve;
          this.#start();
        });
      })
      .catch(() => undefined);
  }

  /** Whether `lease` is the run that leads now. */
  holds(lease: Lease): boolean {
    return this.#lease === lease;
  }

  /**
   * The run `lease` cannot decide a conflicting command again: another build of the app, with
   * deciders this one has not, wrote it. While that lasts, this tab looks every 2 s whether
   * another tab waits for the lock (Web Locks' `query`) and then queues for it again and lets
   * it go, so that the tab waiting first leads; if that one has the decider, the command is
   * replayed. At most once a minute, so that tabs without it do not pass the lock round; the
   * lock comes back here when no other tab wants it.
   */
  cannotDecide(lease: Lease): void {
    if (this.#lease !== lease || this.#check !== undefined) return;
    const check = async () => {
      if (this.#lease !== lease || this.host.done()) return this.#stopCheck();
      if (Date.now() - this.#handedOverAt < HAND_OVER_PAUSE_MS || this.#handing) return;
      if (!(await this.#othersWaiting()) || this.#lease !== lease) return;
      this.#stopCheck();
      this.#handing = this.#handOver().finally(() => {
        this.#handing = undefined;
      });
    };
    this.#check = setInterval(() => void check(), HAND_OVER_CHECK_MS);
    void check();
  }

  /** Stops looking for a tab to hand over to and waits for a hand-over that is running. */
  async quiet(): Promise<void> {
    this.#stopCheck();
    await this.#handing;
  }

  /** Lets the lock go (the tab is closing or stepping aside). */
  release(): void {
    this.#lease = undefined;
    this.#release?.();
    this.#release = undefined;
  }

  #start(): void {
    const lease = {};
    this.#lease = lease;
    this.host.lead(lease);
  }

  #stopCheck(): void {
    if (this.#check !== undefined) clearInterval(this.#check);
    this.#check = undefined;
  }

  /** Whether another tab waits for the lock (without `query`: whether another tab was ever heard). */
  async #othersWaiting(): Promise<boolean> {
    const locks = webLocks();
    if (!locks) return false;
    if (!locks.query) return this.host.peers();
    const state = await locks.query().catch(() => undefined);
    return state?.pending?.some((l) => l.name === `${this.name}:leader`) ?? false;
  }

  async #handOver(): Promise<void> {
    const release = this.#release;
    if (!release || this.host.done()) return;
    this.#handedOverAt = Date.now();
    this.#release = undefined;
    this.#lease = undefined;
    await this.host.stopLeading();
    // Queued again before the release: the tab already waiting goes first.
    this.elect();
    release();
  }
}

const webLocks = () => (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
