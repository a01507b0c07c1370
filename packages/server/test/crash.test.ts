import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { defaultLimits, validateAppend } from '@edgelog/core';
import { describe, expect, it } from 'vitest';
import { AUTHOR_KEY, type CommitRequest } from '../src/log-row.ts';
import { packEvents, versioned } from '../src/packed.ts';
import type { SequencerDO, SequencerFault } from '../src/sequencer-do.ts';
import type { StreamDO, StreamFault } from '../src/stream-do.ts';
import { appendTo, call, freshStore, newEvent, sequencerStub, token } from './helpers.ts';

interface Page {
  events: Array<{ id: string; stream: string; version: number; position: number }>;
  head: number;
  version: number;
}

const streamStub = (store: string, stream: string) =>
  env.STREAMS.get(env.STREAMS.idFromName(`${store}/${stream}`));
async function setup() {
  const store = freshStore('crash');
  const t = await token({ store });
  const append = appendTo(store, t);
  const readAll = async () =>
    (await (await call(`/v1/stores/${store}/events?limit=5000`, { token: t })).json()) as Page;
  const readStream = async (stream: string) =>
    call(`/v1/stores/${store}/streams/${stream}/events`, { token: t });
  return { store, append, readAll, readStream };
}

/** Nothing acknowledged is lost, nothing is stored twice, positions and versions are gap-free. */
async function checkLogs(ctx: Awaited<ReturnType<typeof setup>>, streams: string[]) {
  // A stream read reconciles that stream's pending rows first, so read the streams first.
  const reads = await Promise.all(streams.map((s) => ctx.readStream(s)));
  const all = await ctx.readAll();
  expect(all.events.map((e) => e.position)).toEqual(all.events.map((_, i) => i + 1));
  expect(new Set(all.events.map((e) => e.id)).size).toBe(all.events.length);
  for (const [i, stream] of streams.entries()) {
    const res = reads[i] as Response;
    const ofStream = all.events.filter((e) => e.stream === stream);
    if (ofStream.length === 0) {
      expect(res.status).toBe(404);
      continue;
    }
    const page = (await res.json()) as Page;
    expect(page.events.map((e) => [e.id, e.version, e.position])).toEqual(
      ofStream.map((e) => [e.id, e.version, e.position]),
    );
    expect(page.events.map((e) => e.version)).toEqual(page.events.map((_, i) => i + 1));
  }
  return all;
}

const streamFaults: StreamFault[] = ['before-sequencer-commit', 'after-sequencer-commit'];
const sequencerFaults: SequencerFault[] = ['before-commit', 'after-commit'];

describe('crash safety: every crash point loses nothing acknowledged and duplicates nothing', () => {
  for (const fault of [
    ...streamFaults.map((f) => ['stream', f] as const),
    ...sequencerFaults.map((f) => ['sequencer', f] as const),
  ]) {
    it(`${fault[0]} crashes ${fault[1]}: the append fails, a retry answers once, the logs agree`, async () => {
      const ctx = await setup();
      const acked = [newEvent(), newEvent()];
      expect((await ctx.append('acc-1', acked)).status).toBe(200);

      if (fault[0] === 'stream')
        await runInDurableObject(streamStub(ctx.store, 'acc-1'), (instance: StreamDO) => {
          instance.fault = fault[1] as StreamFault;
        });
      else
        await runInDurableObject(sequencerStub(ctx.store), (instance: SequencerDO) => {
          instance.fault = fault[1] as SequencerFault;
        });

      const crashed = [newEvent(), newEvent(), newEvent()];
      const failed = await ctx.append('acc-1', crashed, 2);
      expect(failed.status).toBeGreaterThanOrEqual(500);

      // The acknowledged events survive; the crashed batch is either wholly in both logs or in neither.
      const after = await checkLogs(ctx, ['acc-1']);
      expect(after.events.slice(0, 2).map((e) => e.id)).toEqual(acked.map((e) => e.id));

      // The client does not know the outcome, so it retries: exactly one copy results.
      const retry = await ctx.append('acc-1', crashed, 2);
      expect(retry.status).toBe(200);
      expect(await retry.json()).toEqual({ version: 5, positions: [3, 4, 5] });
      const retryAgain = await ctx.append('acc-1', crashed, 2);
      expect(await retryAgain.json()).toEqual({ version: 5, positions: [3, 4, 5] });

      // Other streams and later appends carry on with gap-free versions and positions.
      expect((await ctx.append('acc-2', [newEvent()])).status).toBe(200);
      const next = await ctx.append('acc-1', [newEvent()], 5);
      expect(await next.json()).toEqual({ version: 6, positions: [7] });
      const final = await checkLogs(ctx, ['acc-1', 'acc-2']);
      expect(final.events).toHaveLength(7);
    });
  }

  it('a StreamDO that dies after the sequencer committed catches up from the global log on a read alone', async () => {
    const ctx = await setup();
    await runInDurableObject(streamStub(ctx.store, 'acc-1'), (instance: StreamDO) => {
      instance.fault = 'after-sequencer-commit';
    });
    const crashed = [newEvent()];
    expect((await ctx.append('acc-1', crashed)).status).toBeGreaterThanOrEqual(500);
    const read = (await (await ctx.readStream('acc-1')).json()) as Page;
    expect(read.events.map((e) => e.id)).toEqual(crashed.map((e) => e.id));
    await checkLogs(ctx, ['acc-1']);
  });

  it('a batch the sequencer never wrote is visible nowhere (I11)', async () => {
    const ctx = await setup();
    expect((await ctx.append('acc-1', [newEvent()])).status).toBe(200);
    await runInDurableObject(sequencerStub(ctx.store), (instance: SequencerDO) => {
      instance.fault = 'before-commit';
    });
    const lost = [newEvent()];
    expect((await ctx.append('acc-1', lost)).status).toBeGreaterThanOrEqual(500);
    const read = (await (await ctx.readStream('acc-1')).json()) as Page;
    expect(read.version).toBe(1);
    const all = await ctx.readAll();
    expect(all.events.map((e) => e.id)).not.toContain(lost[0]?.id);
    expect(all.head).toBe(1);
  });

  it('a StreamDO whose table fell behind the log is told "stale" and catches up before deciding', async () => {
    const ctx = await setup();
    const first = [newEvent(), newEvent()];
    expect((await ctx.append('acc-1', first.slice(0, 1))).status).toBe(200);
    expect((await ctx.append('acc-1', first.slice(1))).status).toBe(200);
    // A read writes the copies still in memory; then simulate a lost copy (version 2) while
    // the object believes it is in sync.
    expect((await ctx.readStream('acc-1')).status).toBe(200);
    await runInDurableObject(streamStub(ctx.store, 'acc-1'), (_: StreamDO, state) => {
      state.storage.sql.exec('DELETE FROM batches WHERE first_version = 2');
    });
    const conflicting = await ctx.append('acc-1', [newEvent()], 1);
    expect(conflicting.status).toBe(409);
    expect(await conflicting.json()).toMatchObject({ error: { details: { actual: 2 } } });
    const retried = await ctx.append('acc-1', first, 0);
    expect(await retried.json()).toEqual({ version: 2, positions: [1, 2] });
    expect(await (await ctx.append('acc-1', [newEvent()], 2)).json()).toEqual({ version: 3, positions: [3] });
    await checkLogs(ctx, ['acc-1']);
  });

  it('a group commit that fails after an append forgets what that append taught the log', async () => {
    // The log remembers each stream's last version; a group transaction that fails (a disk
    // error) after one of its appends rolls that append back, and the memory with it.
    const ctx = await setup();
    const request = (stream: string, id: string, firstVersion: number): CommitRequest => {
      const packed = packEvents(
        validateAppend(stream, [{ id, type: 'Tested', data: {} }], defaultLimits),
        AUTHOR_KEY,
        't',
      );
      return {
        commitId: crypto.randomUUID(),
        stream,
        ids: packed.ids,
        chunks: versioned(packed.chunks, firstVersion),
      };
    };
    const outcomes = await runInDurableObject(sequencerStub(ctx.store), async (instance: SequencerDO) => {
      type TryAppend = (r: CommitRequest, ...rest: unknown[]) => boolean;
      const log = (instance as unknown as { log: { tryAppend: TryAppend } }).log;
      const tryAppend = log.tryAppend.bind(log);
      log.tryAppend = (r, ...rest) => {
        const written = tryAppend(r, ...rest);
        if (r.stream === 'b') throw new Error('disk I/O error');
        return written;
      };
      const a = request('a', crypto.randomUUID(), 1);
      const failed = await Promise.allSettled([
        instance.commit(a),
        instance.commit(request('b', crypto.randomUUID(), 1)),
      ]);
      log.tryAppend = tryAppend;
      return {
        failed: failed.map((f) => f.status),
        again: await instance.commit({ ...a, commitId: crypto.randomUUID() }),
      };
    });
    expect(outcomes.failed).toEqual(['rejected', 'rejected']);
    expect(outcomes.again).toMatchObject({ status: 'committed', firstPosition: 1 });
  });
});
