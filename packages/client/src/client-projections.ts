import type { ProjectionDefinition } from '@edgelog/core';
import type { StoreNames } from 'idb';
import { abortOnThrow, type LogDb, type LogSchema } from './db.ts';
import { ClientError } from './errors.ts';
import { tailKey } from './log-reads.ts';
import { type ProjectionRunner, projectionId } from './projections.ts';

export interface ProjectionQuery {
  /** Only keys that start with this. */
  prefix?: string;
  /** Resume after this key (exclusive). */
  after?: string;
  /** Default 1,000. */
  limit?: number;
}

/** A client projection's progress over the local log. */
export interface ProjectionStatus {
  name: string;
  version: number;
  /** Local position of the last event folded. */
  checkpoint: number;
  /** The local log's last position. */
  head: number;
  /** Events the projection threw on, set aside. */
  parked: number;
}

const CATCH_UP_SCOPE: StoreNames<LogSchema>[] = ['log', 'rows', 'checkpoints'];

// biome-ignore lint/suspicious/noExplicitAny: definitions of any state type share one runner
type AnyProjection = ProjectionDefinition<any, any>;

/**
 * A worker's client projections as the app reads them, and their catch-up over the log others
 * wrote (a new projection version at start, another tab's build without it later). The folds
 * in write transactions are the ProjectionRunner's (projections.ts).
 */
export class ClientProjections {
  /** The catch-up after another tab's write, while it runs (`catchUpLater`). */
  #catchingUp: Promise<void> | undefined;
  #again = false;

  constructor(
    private readonly runner: ProjectionRunner,
    private readonly db: LogDb,
    /** False once the worker closes or steps aside: no more catch-up passes. */
    private readonly open: () => boolean,
  ) {}

  /**
   * Folds the log the projections have not seen, in one refold in canonical order (see
   * ProjectionRunner.rebuild) and one transaction. `stopped`: whether a stopped projection
   * behind the log is refolded too (at start, yes).
   */
  async catchUp(stopped = true): Promise<void> {
    if (!this.runner.active) return;
    const head = await tailKey(this.db.transaction('log', 'readonly').store);
    const checkpoints = await Promise.all(
      this.runner.definitions.map((d) => this.db.get('checkpoints', projectionId(d))),
    );
    const behind = this.runner.definitions.filter((_, i) => {
      const cp = checkpoints[i];
      return (cp?.lp ?? 0) < head && (stopped || !cp?.stopped);
    });
    if (behind.length === 0) return;
    const tx = this.db.transaction(CATCH_UP_SCOPE, 'readwrite');
    // A throw must not commit the cleared rows without their refold.
    await abortOnThrow(tx, () => this.runner.rebuild(tx, behind));
    await tx.done;
  }

  /**
   * Catches up after another tab's write, one catch-up at a time: writes heard while one runs
   * are covered by one more pass. A stopped projection is left alone (its checkpoint never
   * moves: it would be refolded on every write, to stop again).
   */
  catchUpLater(): void {
    if (!this.runner.active) return;
    if (this.#catchingUp) {
      this.#again = true;
      return;
    }
    this.#catchingUp = (async () => {
      do {
        this.#again = false;
        await this.catchUp(false).catch(() => undefined);
      } while (this.#again && this.open());
    })().finally(() => {
      this.#catchingUp = undefined;
    });
  }

  /** Resolves when no catch-up runs. */
  async idle(): Promise<void> {
    await this.#catchingUp;
  }

  /** A projection's row (the projection's newest version). */
  async read(name: string, key: string): Promise<unknown> {
    // After another tab's write, a reader (a subscriber it woke) sees the rows folded.
    await this.#catchingUp;
    return (await this.db.get('rows', [projectionId(this.#newest(name)), key]))?.state;
  }

  /** Rows of a projection in key order, optionally under a key prefix. */
  async query(name: string, options: ProjectionQuery = {}): Promise<Array<{ key: string; state: unknown }>> {
    await this.#catchingUp;
    const p = projectionId(this.#newest(name));
    const prefix = options.prefix ?? '';
    const lower = options.after !== undefined && options.after >= prefix ? options.after : prefix;
    const range = IDBKeyRange.bound([p, lower], [p, `${prefix}\uffff`], lower === options.after, false);
    const rows = await this.db.getAll('rows', range, options.limit ?? 1000);
    return rows.map((r) => ({ key: r.k, state: r.state }));
  }

  /** Checkpoint, head of the local log and parked events of every client projection. */
  async status(): Promise<ProjectionStatus[]> {
    const head = await tailKey(this.db.transaction('log', 'readonly').store);
    return Promise.all(
      this.runner.definitions.map(async (d) => {
        const cp = await this.db.get('checkpoints', projectionId(d));
        return {
          name: d.name,
          version: d.version,
          checkpoint: cp?.lp ?? 0,
          head,
          parked: cp?.parked.length ?? 0,
        };
      }),
    );
  }

  /**
   * The newest version of a projection (as the edge answers with its newest ready one):
   * every version a worker holds is caught up before its first read (see WorkerCore.init).
   */
  #newest(name: string): AnyProjection {
    let d: AnyProjection | undefined;
    for (const p of this.runner.definitions) if (p.name === name && (!d || p.version > d.version)) d = p;
    if (!d) throw new ClientError('NotFound', `no projection named '${name}'`);
    return d;
  }
}
