export type { AdmissionVerdict } from './admission.ts';
export {
  Admission,
  AdmissionPolicy,
  admission,
  admissionFromEnv,
  defaultAdmission,
  TokenBucket,
} from './admission.ts';
export type { AppOptions } from './app.ts';
export { BENCH_BYPASS_HEADER, createApp } from './app.ts';
export type { Role } from './auth.ts';
export { bearerToken, Claims, signToken, verifyToken } from './auth.ts';
export type { AnyProjection, EdgeConfig } from './config.ts';
export { configureEdge } from './config.ts';
export type { ServerEnv } from './env.ts';
export type {
  ProjectionApi,
  ProjectionRef,
  ProjectionState,
  ProjectionStatus,
  RowPage,
} from './projection-do.ts';
export { ProjectionDO } from './projection-do.ts';
export { DEFAULT_WAIT_MS, MAX_WAIT_MS, pokeProjections } from './projection-routes.ts';
export type { GlobalPage, GlobalReadScope, SequencerApi, SequencerFault } from './sequencer-do.ts';
export { SequencerDO } from './sequencer-do.ts';
export type { AppendInput, AppendOutcome, ReadOutcome, StreamApi, StreamFault } from './stream-do.ts';
export { StreamDO } from './stream-do.ts';
