export type {
  AggregateLoad,
  CommandHandlerOptions,
  CommandResult,
  Decider,
  DomainEvent,
  LoadOptions,
} from './decider.ts';
export { aggregateStream, handleCommand } from './decider.ts';
export type { RecordedEvent } from './envelope.ts';
export {
  EventEnvelope,
  EventFilter,
  EventId,
  EventType,
  Metadata,
  matchesFilter,
  NewEvent,
  StoreName,
  StreamName,
} from './envelope.ts';
export type { ErrorDetails, ExpectedVersionValue, ValidationIssue } from './errors.ts';
export {
  EdgelogError,
  ErrorCode,
  ErrorResponse,
  error,
  fromWire,
  fromZodError,
  httpStatusOf,
  idempotencyConflict,
  isEdgelogError,
  payloadTooLarge,
  streamNotFound,
  toWireError,
  validationError,
  WireError,
  wrongExpectedVersion,
} from './errors.ts';
export type {
  DataOf,
  EventDefinition,
  EventDefinitionInput,
  EventInputOf,
  EventOf,
  EventRegistry,
  Upcasters,
} from './event-definition.ts';
export { defineEvent, eventRegistry } from './event-definition.ts';
export type {
  AppendOptions,
  AppendResult,
  EventHandler,
  EventStore,
  ReadAllOptions,
  ReadAllResult,
  ReadStreamOptions,
  ReadStreamResult,
  SubscribeOptions,
  Subscription,
} from './event-store.ts';
export { checkExpectedVersion, ExpectedVersion } from './expected-version.ts';
export type { InMemoryEventStoreOptions } from './in-memory-event-store.ts';
export { InMemoryEventStore } from './in-memory-event-store.ts';
export type { Limits } from './limits.ts';
export { defaultLimits, eventSize, scanBudget, utf8Length } from './limits.ts';
export type { Clock, IdSource } from './ports.ts';
export { randomId, systemClock, uuidv7 } from './ports.ts';
export type { ParkedEvent, ProjectBatchOptions, ProjectedBatch, ProjectionDefinition } from './projection.ts';
export {
  defineProjection,
  jsonStateCheck,
  keysOf,
  keysOfBatch,
  projectBatch,
  projectBatchAsJson,
  projectEvents,
  projectionHandles,
  upcastOnce,
} from './projection.ts';
export {
  AppendRequest,
  AppendResponse,
  ClientMessage,
  Commit,
  CommitResult,
  PROTOCOL_VERSION,
  PullQuery,
  PullResponse,
  PushRequest,
  PushResponse,
  paths,
  ReadAllQuery,
  ReadAllResponse,
  ReadDirection,
  ReadStreamQuery,
  ReadStreamResponse,
  ServerMessage,
  SubscriptionId,
} from './protocol.ts';
export type { LoadFacts, Snapshot, SnapshotPolicy } from './snapshot.ts';
export { isUsableSnapshot, shouldSnapshot, snapshotKey } from './snapshot.ts';
export { Subscriber } from './subscriber.ts';
export { hasDuplicate, type ValidEvent, validateAppend } from './validate-append.ts';
export { matchesExpectedVersion } from './version-rules.ts';
