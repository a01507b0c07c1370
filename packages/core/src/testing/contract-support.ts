import type { EventEnvelope, EventFilter, NewEvent } from '../envelope.ts';
import type { EventStore, ReadAllResult } from '../event-store.ts';
import type { Limits } from '../limits.ts';
import { randomId } from '../ports.ts';

export interface StoreUnderTest {
  store: EventStore;
  /** The limits the store enforces, when stricter than core's defaults. */
  limits?: Partial<Limits>;
  close?: () => Promise<void>;
}

export interface ContractOptions {
  /** fast-check runs of the model-based test (each run uses a fresh store). Default 25. */
  modelRuns?: number;
  /** How long to wait for a subscription to deliver, ms. Default 5,000. */
  deliveryTimeoutMs?: number;
  /** Test timeout, ms. Default 30,000. */
  timeoutMs?: number;
}

let counter = 0;
/** A new event with a fresh UUID. */
export const newEvent = (
  type = 'Tested',
  data: unknown = { n: ++counter },
  metadata?: Record<string, unknown>,
): NewEvent => ({
  id: randomId(),
  type,
  data,
  ...(metadata ? { metadata } : {}),
});
export const events = (n: number, type = 'Tested') => Array.from({ length: n }, () => newEvent(type));
export const uniqueStream = (prefix = 'contract') => `${prefix}-${randomId().slice(0, 8)}`;

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { code?: unknown }).code ?? `no code: ${String(e)}`);
  }
  return 'resolved';
}

/** Every event after `after` (matching `filter`), page by page, following each page's `scannedTo`. */
export async function readAllEvents(
  store: EventStore,
  after = 0,
  filter?: EventFilter,
  limit = 500,
): Promise<EventEnvelope[]> {
  const out: EventEnvelope[] = [];
  let cursor = after;
  for (;;) {
    const page: ReadAllResult = await store.readAll({ after: cursor, limit, ...(filter ? { filter } : {}) });
    out.push(...page.events);
    if (page.scannedTo >= page.head) return out;
    if (page.scannedTo <= cursor)
      throw new Error(`a page after ${cursor} did not move (scannedTo ${page.scannedTo})`);
    cursor = page.scannedTo;
  }
}

export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

declare function setTimeout(fn: () => void, ms: number): unknown;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** What every part of the contract suite is given. */
export interface ContractContext {
  /** A fresh, empty store; closed after each test. */
  fresh: () => Promise<StoreUnderTest>;
  timeout: number;
  /** How long to wait for a subscription to deliver, ms. */
  delivery: number;
  options: ContractOptions;
}
