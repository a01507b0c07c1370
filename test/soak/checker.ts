import { lowestBalance } from './domain.ts';

/**
 * The soak's history checker: pure, so it can be tested on hand-made bad histories.
 *
 * An operation is one call a client made: `execute` (a decider command through the SDK),
 * `append` (a raw SDK append, possibly with a numeric expected version) or `http` (a plain HTTP
 * append through the faulty network, with no SDK). Its status is how the call itself ended:
 * `ok` (SDK: durable in the local log; HTTP: 200 with positions), `fail` (a definite refusal:
 * nothing may be stored) or `unknown` (the answer was lost: stored at most once).
 */
export type OpKind = 'execute' | 'append' | 'http';
export type OpStatus = 'ok' | 'fail' | 'unknown';

export interface Op {
  /** Unique; every event the operation causes carries it as `metadata.op`. */
  id: string;
  client: string;
  kind: OpKind;
  stream: string;
  status: OpStatus;
  /** The ids of the events as first written (a replay gives an `execute` new ids). */
  eventIds: string[];
  /** `http` and `ok`: the positions the server acknowledged, one per event. */
  positions?: number[];
}

export interface ServerEvent {
  id: string;
  stream: string;
  type: string;
  data: unknown;
  metadata: Record<string, unknown>;
  version: number;
  position?: number | undefined;
}

export interface ClientEvent {
  id: string;
  stream: string;
  version: number;
  serverPosition?: number | undefined;
  pending: boolean;
}

export interface ClientRejection {
  commitId: string;
  stream: string;
  eventIds: string[];
  command?: { decider: string; command: unknown } | undefined;
}

export interface ClientView {
  name: string;
  events: ClientEvent[];
  rejections: ClientRejection[];
  /**
   * The ids an app's view folded from `subscribe` holds (events in, withdrawals out), over the
   * client's last opening.
   */
  subscribed?: string[];
}

export interface History {
  ops: Op[];
  /** The server's global log, as read after the traffic stopped, in the order it was returned. */
  server: ServerEvent[];
  /** The store's head as the server reported it. */
  head: number;
  clients: ClientView[];
  /** Streams whose balance (Deposited - Withdrawn, in version order) must never go below 0. */
  guarded: string[];
}

export type AnomalyKind =
  | 'position-gap'
  | 'position-order'
  | 'duplicate-event'
  | 'version-gap'
  | 'duplicate-op'
  | 'lost-ack'
  | 'lost-write'
  | 'rejected-visible'
  | 'failed-visible'
  | 'divergence'
  | 'subscription'
  | 'overdraft'
  | 'orphan-event';

export interface Anomaly {
  kind: AnomalyKind;
  message: string;
}

export interface CheckStats {
  ops: number;
  byStatus: Record<OpStatus, number>;
  /** SDK operations on the server with their original events. */
  committed: number;
  /** `execute` operations on the server with events a replay made after a conflict. */
  replayed: number;
  /** SDK operations the server state refused after a conflict (reported to the app). */
  rejected: number;
  /** `unknown` operations that turned out stored (the rest were not). */
  unknownStored: number;
  events: number;
  streams: number;
}

export interface CheckResult {
  anomalies: Anomaly[];
  stats: CheckStats;
}

const opOf = (e: { metadata: Record<string, unknown> }): string | undefined =>
  typeof e.metadata.op === 'string' ? e.metadata.op : undefined;

/** Checks a history against I1-I5, I10 and I11; an empty `anomalies` means the run was clean. */
export function checkHistory(h: History): CheckResult {
  const anomalies: Anomaly[] = [];
  const report = (kind: AnomalyKind, message: string) => anomalies.push({ kind, message });

  // I5: positions 1..head, unique, gap-free, increasing in the order the log is read.
  h.server.forEach((e, i) => {
    if (e.position !== i + 1) {
      const prev = h.server[i - 1]?.position ?? 0;
      if (e.position !== undefined && e.position <= prev)
        report('position-order', `event ${e.id} at position ${e.position} follows position ${prev}`);
      else report('position-gap', `expected position ${i + 1}, found ${e.position} (event ${e.id})`);
    }
  });
  if (h.server.length !== h.head)
    report('position-gap', `the head is ${h.head} but the log holds ${h.server.length} events`);

  // I2: every event id once.
  const byId = new Map<string, ServerEvent>();
  for (const e of h.server) {
    if (byId.has(e.id)) report('duplicate-event', `event ${e.id} is stored twice`);
    else byId.set(e.id, e);
  }

  // I3: per stream, versions 1..n in position order.
  const streams = new Map<string, ServerEvent[]>();
  for (const e of h.server) {
    const list = streams.get(e.stream) ?? [];
    list.push(e);
    streams.set(e.stream, list);
  }
  for (const [stream, list] of streams) {
    list.forEach((e, i) => {
      if (e.version !== i + 1)
        report('version-gap', `stream ${stream}: event ${e.id} has version ${e.version}, expected ${i + 1}`);
    });
  }

  // Every stored event belongs to exactly one operation, and no operation is stored twice (I10).
  const ops = new Map(h.ops.map((o) => [o.id, o]));
  const stored = new Map<string, ServerEvent[]>();
  for (const e of h.server) {
    const op = opOf(e);
    if (op === undefined || !ops.has(op)) {
      report('orphan-event', `event ${e.id} on ${e.stream} belongs to no recorded operation`);
      continue;
    }
    const list = stored.get(op) ?? [];
    list.push(e);
    stored.set(op, list);
  }

  // Rejections the clients reported, by operation.
  const rejectedOps = new Map<string, ClientRejection>();
  const opByEventId = new Map<string, string>();
  for (const o of h.ops) for (const id of o.eventIds) opByEventId.set(id, o.id);
  for (const c of h.clients) {
    for (const r of c.rejections) {
      const fromCommand = (r.command?.command as { op?: unknown } | undefined)?.op;
      const op =
        typeof fromCommand === 'string'
          ? fromCommand
          : r.eventIds.map((id) => opByEventId.get(id)).find(Boolean);
      if (op !== undefined) rejectedOps.set(op, r);
      // I11: no event of a rejected append is visible, on the server or in any client.
      for (const id of r.eventIds) {
        if (byId.has(id))
          report('rejected-visible', `event ${id} of rejected commit ${r.commitId} is on the server`);
        for (const other of h.clients) {
          if (other.events.some((e) => e.id === id))
            report(
              'rejected-visible',
              `event ${id} of rejected commit ${r.commitId} is in ${other.name}'s log`,
            );
        }
      }
    }
  }

  const stats: CheckStats = {
    ops: h.ops.length,
    byStatus: { ok: 0, fail: 0, unknown: 0 },
    committed: 0,
    replayed: 0,
    rejected: 0,
    unknownStored: 0,
    events: h.server.length,
    streams: streams.size,
  };

  for (const o of h.ops) {
    stats.byStatus[o.status]++;
    const mine = stored.get(o.id) ?? [];
    const expected = o.eventIds.length;
    if (mine.length > expected)
      report(
        'duplicate-op',
        `operation ${o.id} (${o.kind} on ${o.stream}) is stored ${mine.length} times over`,
      );
    const rejection = rejectedOps.get(o.id);
    if (o.status === 'fail') {
      if (mine.length > 0) report('failed-visible', `operation ${o.id} failed but its events are stored`);
      continue;
    }
    if (o.status === 'unknown') {
      if (mine.length > 0) stats.unknownStored++;
      continue;
    }
    if (o.kind === 'http') {
      // I1: an acknowledged append is stored, with the ids and positions it was acknowledged with.
      o.eventIds.forEach((id, i) => {
        const e = byId.get(id);
        const at = o.positions?.[i];
        if (!e)
          report('lost-ack', `acknowledged event ${id} of ${o.id} (position ${at}) is not on the server`);
        else if (at !== undefined && e.position !== at)
          report(
            'lost-ack',
            `acknowledged event ${id} of ${o.id} was answered position ${at} but is at ${e.position}`,
          );
      });
      continue;
    }
    // I9/I10: a resolved local append ends on the server exactly once, or is reported rejected.
    if (mine.length > 0 && rejection)
      report('rejected-visible', `operation ${o.id} was reported rejected but its events are stored`);
    else if (mine.length === 0 && !rejection)
      report(
        'lost-write',
        `operation ${o.id} (${o.kind} on ${o.stream}) is neither stored nor reported rejected`,
      );
    else if (rejection) stats.rejected++;
    else if (mine.every((e) => o.eventIds.includes(e.id))) stats.committed++;
    else stats.replayed++;
  }

  // I10: every client converged to the server's log: same events, versions and positions, none pending.
  const key = (id: string, stream: string, version: number, position: number | undefined) =>
    `${id} ${stream} v${version} @${position}`;
  const serverKeys = new Set(h.server.map((e) => key(e.id, e.stream, e.version, e.position)));
  for (const c of h.clients) {
    const local = new Set<string>();
    for (const e of c.events) {
      if (e.pending) report('divergence', `${c.name}: event ${e.id} on ${e.stream} is still pending`);
      local.add(key(e.id, e.stream, e.version, e.serverPosition));
    }
    const missing = [...serverKeys].filter((k) => !local.has(k));
    const extra = [...local].filter((k) => !serverKeys.has(k));
    if (missing.length > 0 || extra.length > 0)
      report(
        'divergence',
        `${c.name}: ${missing.length} server events missing (${missing.slice(0, 3).join('; ')}), ` +
          `${extra.length} not on the server (${extra.slice(0, 3).join('; ')})`,
      );
  }

  // A view folded from `subscribe` (events in, withdrawals out) ends equal to the log.
  const serverIds = new Set(h.server.map((e) => e.id));
  for (const c of h.clients) {
    if (!c.subscribed) continue;
    const folded = new Set(c.subscribed);
    const missing = [...serverIds].filter((id) => !folded.has(id));
    const extra = [...folded].filter((id) => !serverIds.has(id));
    if (missing.length > 0 || extra.length > 0)
      report(
        'subscription',
        `${c.name}: the subscription's view misses ${missing.length} events (${missing.slice(0, 3).join(', ')}) ` +
          `and holds ${extra.length} that are not in the log (${extra.slice(0, 3).join(', ')})`,
      );
  }

  // I4 with deciders: every command committed was decided on the state it committed on.
  for (const stream of h.guarded) {
    const low = lowestBalance(streams.get(stream) ?? []);
    if (low < 0) report('overdraft', `stream ${stream}: the balance reached ${low}`);
  }

  return { anomalies, stats };
}
