import { type DomainEvent, type SnapshotPolicy, shouldSnapshot, snapshotKey } from '@edgelog/core';
import type { SnapshotRecord } from './db.ts';
import { type LocalEnvelope, toEnvelope } from './envelope.ts';
import { ClientError } from './errors.ts';
import type { LocalAppendResult, LocalLog } from './local-log.ts';
import type { AnyDecider, AppendInput, ExecuteResult } from './worker-core.ts';

/** What `execute` needs of its worker. */
export interface CommandHost {
  deciders(): Readonly<Record<string, AnyDecider>> | undefined;
  snapshots(): Readonly<Record<string, SnapshotPolicy>> | undefined;
  log(): LocalLog;
  /** An event as appended: an id made, data checked by the registry. */
  prepare(e: AppendInput): AppendInput & { id: string };
  upcast(e: LocalEnvelope): LocalEnvelope;
  /** Counts a new pending commit in the status. */
  counted(result: LocalAppendResult): void;
}

/** Loads the aggregate, decides, and appends as pending with the command remembered for replay. */
export async function execute(
  host: CommandHost,
  deciderName: string,
  stream: string,
  command: unknown,
): Promise<ExecuteResult> {
  const decider = host.deciders()?.[deciderName];
  if (!decider) throw new ClientError('Definition', `no decider named '${deciderName}' in this worker`);
  for (let attempt = 0; ; attempt++) {
    const { state, version: loadedVersion } = await loadAggregate(host, deciderName, decider, stream);
    const loaded = { version: loadedVersion };
    let decided: DomainEvent | readonly DomainEvent[];
    try {
      decided = decider.decide(command, state);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string') throw e;
      throw new ClientError('CommandRejected', e instanceof Error ? e.message : String(e));
    }
    const list: readonly DomainEvent[] = Array.isArray(decided) ? decided : [decided as DomainEvent];
    if (list.length === 0) {
      return { events: [], version: loaded.version, positions: [], commitId: '', recordedAt: '' };
    }
    const prepared = list.map((e) =>
      host.prepare({ type: e.type, data: e.data, ...(e.metadata ? { metadata: e.metadata } : {}) }),
    );
    try {
      const result = await host.log().append(stream, prepared, {
        expectedVersion: loaded.version === 0 ? 'no_stream' : loaded.version,
        command: { decider: deciderName, command },
        freshIds: true,
      });
      host.counted(result);
      const first = result.version - prepared.length + 1;
      const events = prepared.map((e, i) =>
        host.upcast({
          id: e.id,
          stream,
          type: e.type,
          schemaVersion: e.schemaVersion ?? 1,
          data: e.data,
          metadata: e.metadata ?? {},
          version: first + i,
          position: result.positions[i]!,
          recordedAt: result.recordedAt,
          pending: true,
        }),
      );
      return { ...result, events };
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'WrongExpectedVersion' || attempt >= 3) throw e;
    }
  }
}

/**
 * Folds a stream for a decider, from its snapshot when the decider has a policy. Snapshots
 * cover only the confirmed prefix of the stream (pending events may still be replayed or
 * rejected), so they never need undoing; they are disposable.
 */
async function loadAggregate(
  host: CommandHost,
  name: string,
  decider: AnyDecider,
  stream: string,
): Promise<{ state: unknown; version: number }> {
  const policy = host.snapshots()?.[name];
  const key = policy ? `${name}:${snapshotKey(stream, policy.stateVersion)}` : '';
  const stored = policy ? await host.log().db.get('snapshots', key) : undefined;
  const snapshot = policy && stored?.stateVersion === policy.stateVersion ? stored : undefined;
  const loaded = await host.log().loadStream(stream, snapshot?.version ?? 0);
  let state = snapshot ? snapshot.state : decider.initialState();
  let prefix = snapshot?.version ?? 0;
  let prefixState = state;
  for (const e of loaded.events) {
    state = decider.evolve(state, host.upcast(toEnvelope(e)));
    if (e.position !== undefined && e.version === prefix + 1) {
      prefix = e.version;
      prefixState = state;
    }
  }
  const facts = {
    version: prefix,
    snapshotVersion: snapshot?.version ?? 0,
    replayed: loaded.events.length,
  };
  if (policy && shouldSnapshot(policy, facts)) {
    const record: SnapshotRecord = {
      key,
      stream,
      version: prefix,
      stateVersion: policy.stateVersion,
      state: prefixState,
    };
    host
      .log()
      .db.put('snapshots', record)
      .catch(() => undefined);
  }
  return { state, version: loaded.version };
}
