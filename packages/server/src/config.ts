import type { Decider, EventRegistry, ProjectionDefinition, SnapshotPolicy } from '@edgelog/core';
import { error } from '@edgelog/core';

// biome-ignore lint/suspicious/noExplicitAny: projections of any state and event type share one list
export type AnyProjection = ProjectionDefinition<any, any>;
// biome-ignore lint/suspicious/noExplicitAny: deciders of any command, event and state type share one record
export type AnyDecider = Decider<any, any, any>;

/** What an app gives its edge: the code that cannot travel in a request. */
export interface EdgeConfig {
  /**
   * Projections the edge maintains per store. Several versions of one name may be listed:
   * a new version builds beside the old one and takes its queries once it has caught up.
   */
  projections: readonly AnyProjection[];
  /**
   * Upcasts stored events to their current shape on every read path (stream reads, read-all,
   * pull, WebSocket subscriptions, projections, aggregate loads). Stored bytes never change.
   */
  registry?: EventRegistry;
  /** Deciders by name: `GET .../streams/:stream/aggregates/:name` folds a stream with one. */
  deciders?: Readonly<Record<string, AnyDecider>>;
  /**
   * Snapshot policies by decider name (core's `SnapshotPolicy`): the StreamDO keeps the
   * folded state by (stream, version, state version) and starts later loads from it.
   */
  snapshots?: Readonly<Record<string, SnapshotPolicy>>;
}

let config: EdgeConfig = { projections: [] };

/**
 * Sets the edge configuration. Call it at the top level of the Worker module, before
 * exporting the handler and the Durable Object classes: they share the module.
 */
export function configureEdge(next: Partial<EdgeConfig>): void {
  const projections = next.projections ?? config.projections;
  const seen = new Set<string>();
  for (const p of projections) {
    const id = `${p.name}@${p.version}`;
    if (seen.has(id)) throw error('Definition', `projection ${id} is configured twice`);
    seen.add(id);
  }
  config = { ...config, ...next, projections };
}

export const edgeConfig = (): EdgeConfig => config;

/** The configured versions of a projection, newest first. */
export function projectionVersions(name: string): AnyProjection[] {
  return config.projections.filter((p) => p.name === name).sort((a, b) => b.version - a.version);
}

export function projectionDefinition(name: string, version: number): AnyProjection | undefined {
  return config.projections.find((p) => p.name === name && p.version === version);
}
