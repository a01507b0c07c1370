import type { ExpectedVersion } from '@edgelog/core';
import { type Endpoint, expose } from 'comlink';
import { toPlainError } from './errors.ts';
import { isLane, LANE } from './lane.ts';
import type { RejectionNotice } from './status.ts';
import {
  type AppendInput,
  type InitOptions,
  plainErrors,
  WorkerCore,
  type WorkerSetup,
} from './worker-core.ts';

export type {
  AnyDecider,
  AnyProjection,
  AppendInput,
  ExecuteResult,
  InitOptions,
  WorkerSetup,
} from './worker-core.ts';

type Remote<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<Awaited<R>> | R : never;

/**
 * Several appends from one JSON text of `[stream, events, options]` lists, each settled on its
 * own. `canonical`: the text is `JSON.stringify`'s (the page's lane), so its length bounds the
 * events' size; any other text (`1E20` for a 21-digit number) may not, and they are measured.
 */
async function appendMany(core: WorkerCore, text: string, canonical = false) {
  const list = JSON.parse(text) as Array<Parameters<WorkerCore['append']>>;
  const bound = canonical ? text.length : undefined;
  const settled = await Promise.allSettled(list.map(([s, e, o]) => core.append(s, e, o, bound)));
  return settled.map((r) => (r.status === 'fulfilled' ? { ok: r.value } : { error: toPlainError(r.reason) }));
}

/** The API a worker exposes to the page; every error crosses as plain `{ code, message, details }`. */
export function workerApi(core: WorkerCore) {
  let laneOn = false;
  return {
    init: (options: InitOptions, getToken?: Remote<(refresh: boolean) => string>) =>
      plainErrors(() =>
        core.init(options, getToken ? async (refresh) => String(await getToken(refresh)) : undefined),
      ),
    append: (
      stream: string,
      events: readonly AppendInput[],
      options?: { expectedVersion?: ExpectedVersion },
    ) => plainErrors(() => core.append(stream, events, options)),
    /**
     * Several appends in one message, as the JSON text of `[stream, events, options]` lists;
     * they share a group commit, each checked on its own.
     */
    appendMany: (text: string) => appendMany(core, text),
    /**
     * The appends' lane (lane.ts): `[LANE, id, text]` arrays on `endpoint`, the worker's own
     * channel beside comlink's messages, answered `[LANE, id, results]` (or
     * `[LANE, id, undefined, error]`), as `appendMany`. The commonest call skips comlink's
     * proxies, which cost an awaited single append about a third of a millisecond more; and
     * the worker's own channel wakes the other thread sooner than a MessagePort (about 0.1 ms
     * a round trip in Chromium). `startWorker` installs it; a worker that exposes `workerApi`
     * itself and does not is sent its appends through comlink (see `lane`).
     */
    appendLane: (endpoint: Endpoint) => {
      laneOn = true;
      endpoint.addEventListener('message', (m) => {
        const data = (m as MessageEvent<unknown>).data;
        if (!isLane(data)) return;
        const [, id, text] = data as [typeof LANE, number, string];
        const answer = (reply: unknown[]) => endpoint.postMessage([LANE, id, ...reply]);
        appendMany(core, text, true).then(
          (results) => {
            try {
              answer([results]);
            } catch {
              // An error whose details cannot be copied (an app's validator may add any):
              // each append is still answered, the errors without their details.
              answer([
                results.map((r) =>
                  'error' in r ? { error: { code: r.error.code, message: r.error.message } } : r,
                ),
              ]);
            }
          },
          (e: unknown) => answer([undefined, toPlainError(e)]),
        );
      });
      endpoint.start?.();
    },
    /** Whether `appendLane` listens: the page asks once, and sends appends through comlink if not. */
    lane: () => laneOn,
    execute: (...a: Parameters<WorkerCore['execute']>) => plainErrors(() => core.execute(...a)),
    // Reads cross as one JSON text: structured clone copies an envelope property by property
    // on both sides, a string is one copy (events are JSON data; the page parses them).
    readStream: (...a: Parameters<WorkerCore['readStream']>) =>
      plainErrors(async () => {
        const r = await core.readStream(...a);
        return { events: JSON.stringify(r.events), version: r.version };
      }),
    readAll: (...a: Parameters<WorkerCore['readAll']>) =>
      plainErrors(async () => {
        const r = await core.readAll(...a);
        return { events: JSON.stringify(r.events), head: r.head, scannedTo: r.scannedTo };
      }),
    readProjection: (...a: Parameters<WorkerCore['readProjection']>) =>
      plainErrors(() => core.readProjection(...a)),
    queryProjection: (...a: Parameters<WorkerCore['queryProjection']>) =>
      plainErrors(() => core.queryProjection(...a)),
    projectionStatus: () => plainErrors(() => core.projectionStatus()),
    subscribe: (...a: Parameters<WorkerCore['subscribe']>) => plainErrors(() => core.subscribe(...a)),
    unsubscribe: (id: number) => plainErrors(() => core.unsubscribe(id)),
    onStatus: (listener: Parameters<WorkerCore['onStatus']>[0]) => core.onStatus(listener),
    onRejected: (listener: (n: RejectionNotice) => void) => core.onRejected(listener),
    off: (id: number) => core.off(id),
    rejections: () => plainErrors(() => core.rejections()),
    status: () => core.status(),
    setOnline: (online: boolean) => core.setOnline(online),
    syncNow: () => plainErrors(() => core.syncNow()),
    close: () => plainErrors(() => core.close()),
  };
}

export type WorkerApi = ReturnType<typeof workerApi>;

/**
 * Starts the edgelog worker in a dedicated Web Worker. Call it from your worker module with
 * the code that cannot cross `postMessage`: deciders, projections and the event registry.
 */
export function startWorker(
  setup: WorkerSetup = {},
  endpoint: Endpoint = self as unknown as Endpoint,
): WorkerApi {
  const api = workerApi(new WorkerCore(setup));
  expose(api, endpoint);
  api.appendLane(endpoint);
  return api;
}

export type { ClientStatus, RejectionNotice } from './status.ts';
export type { LiveConnection, LiveHandlers, TokenSource, Transport } from './transport.ts';
export { HttpTransport } from './transport.ts';
export { WorkerCore } from './worker-core.ts';
