export type { AppendOptions, Client, ClientOptions, Subscribable } from './client.ts';
export { createClient } from './client.ts';
export type { LocalEnvelope } from './envelope.ts';
export { ClientError } from './errors.ts';
export type { LocalAppendResult, ReadOptions } from './local-log.ts';
export type { ClientStatus, RejectionNotice, Withdrawal } from './status.ts';
export type { ProjectionQuery, ProjectionStatus } from './worker-core.ts';
