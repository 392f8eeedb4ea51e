/**
 * medplum-dualwrite: mirror every write between a legacy system and Medplum during a phased
 * migration, keep the copies linked, and move units from one system to the other one stage at
 * a time. This file is the public API; everything else is internal.
 *
 * @packageDocumentation
 */

export { DualWriter } from './dual-writer.ts';
export { Operator } from './operator/operator.ts';
export type { OperatorOptions, DeadLetterSelection } from './operator/operator.ts';
export type {
  BacklogLine,
  BulkOutcome,
  ConflictCounts,
  ConflictView,
  DeadLetterView,
  OperatorStatus,
  UnitStatus,
} from './operator/operator-views.ts';
export type { DualWriterOptions, WriteCallOptions, FeedOptions } from './dual-writer-options.ts';
export type { WriteResult, SideOutcome, SideAction } from './write-result.ts';
export type { DualWriteEvent, FieldChange } from './dual-write-event.ts';
export type { LeaseStatus } from './mirror/lease-runner.ts';

export { CutoverPlan, StageChangeRefusedError } from './plan/cutover-plan.ts';
export type {
  CutoverPlanOptions,
  UnitStages,
  StageChange,
  StageChangeOptions,
  PlanStatus,
} from './plan/cutover-plan.ts';
export type { StoredPlan, PlanSeed, PlanChange, PlanChangeOutcome } from './journal/stored-plan.ts';
export { DEFAULT_GATES } from './plan/readiness.ts';
export type { Readiness, ReadinessGates, ReadinessOptions, GateLimits } from './plan/readiness.ts';
export { STAGES, routeOf, isStage } from './plan/stage.ts';
export type { Stage, StageRoute } from './plan/stage.ts';

export type { ResourceMapping, DeletePolicy, DeletePolicies } from './mapping/resource-mapping.ts';
export type {
  FhirReferences,
  LegacyKeys,
  ReferenceAt,
  ReferenceElement,
  ReferenceHolders,
  ReferencePath,
  ReferenceField,
  ReferenceFields,
} from './mapping/reference-fields.ts';
export { DependencyError } from './mirror/dependency-error.ts';
export type { DependencyState } from './mirror/dependency-error.ts';
export type { Dependency } from './journal/waiting-for.ts';

export { LegacyVersionConflictError, LegacyNotFoundError } from './sides/legacy-adapter.ts';
export type {
  LegacyAdapter,
  LegacyRecord,
  LegacyWriteOptions,
  LegacyCallOptions,
  LegacyChange,
  LegacyChangePage,
  LegacyScanOptions,
  LegacyScanPage,
} from './sides/legacy-adapter.ts';
export { createMedplumClient, captureHttpStatus } from './sides/http-capture.ts';

export type {
  Job,
  JobDirection,
  JobFilter,
  JobKind,
  JobPageLease,
  JobPageResult,
  JobSpec,
  JobState,
  JobStore,
  SeenCopy,
} from './journal/job.ts';
export { backfill, backfillInOrder } from './jobs/backfill.ts';
export { dependencyOrder } from './jobs/dependency-order.ts';
export type { BackfillOptions } from './jobs/backfill.ts';
export type { BackfillClient, LaneDrainer, LaneDrainers } from './jobs/own-client.ts';
export type { JobContext, JobRecord } from './jobs/job-context.ts';
export type { JobProgress, JobWorkerOptions } from './jobs/job-worker.ts';
export { reconcile } from './jobs/reconcile.ts';
export type { ReconcileOptions } from './jobs/reconcile.ts';
export { MemoryStore } from './journal/memory-store.ts';
export { PostgresStore } from './journal/postgres-store.ts';
export type { PostgresStoreOptions, EmbeddedPostgresStoreOptions } from './journal/postgres-store.ts';
export type {
  OutboxKind,
  OutboxKey,
  OutboxIntent,
  OutboxTicket,
  OutboxError,
  OutboxEntry,
  Lease,
  LeaseOutcome,
  DeadLetter,
  DeadLetterFilter,
  OutboxBacklog,
  OutboxCounts,
} from './journal/outbox.ts';
export type { StoredEvent, RecordedEvent, EventFilter, EventTally } from './journal/sync-store.ts';
export { LinkConflictError } from './journal/sync-store.ts';
export type { SyncStore, DeadLetterOptions, NewDeadLetter } from './journal/sync-store.ts';
export type { ReadinessEvidence, ReadinessSample } from './journal/readiness-evidence.ts';
export type { BacklogSample, LagPoint, BacklogRecording } from './journal/operating-history.ts';
export type { BacklogHistoryOptions } from './journal/backlog-recorder.ts';
export type { Link } from './journal/link.ts';

export type { RetryOptions } from './mirror/retry-policy.ts';
export type { DrainerOptions, DrainReport } from './mirror/drainer.ts';
export { drainUnit, UnitNotDrainedError, type UnitDrained } from './mirror/drain-unit.ts';
export { pruneJournal, type PruneReport, type RetentionOptions } from './journal/retention.ts';
export type {
  HousekeepingStore,
  PruneCounts,
  RetentionRule,
  RetentionRules,
  UnitPause,
} from './journal/housekeeping.ts';
export type { BackoffOptions } from './mirror/backoff.ts';
export { QuotaPacer, interactionCost } from './pacing/quota-pacer.ts';
export type { QuotaPacerOptions, PacerLane, PacerStats, RequestCost } from './pacing/quota-pacer.ts';

export {
  DualWriteError,
  ConfigurationError,
  InvalidInputError,
  MappingError,
  RejectedError,
  UnavailableError,
  OutcomeUnknownError,
  RequestTimeoutError,
  ConflictError,
  MirrorError,
  DeadLetterNotFoundError,
  JobNotFoundError,
  MissingPeerDependencyError,
  JournalError,
} from './errors.ts';
export type { Side, ErrorDetails, MirrorFailure } from './errors.ts';

export { normalise, contentHash } from './divergence/normalise.ts';
export type { NormaliseOptions } from './divergence/normalise.ts';
export { diff } from './divergence/diff.ts';
export type { DiffEntry, DiffKind, DiffOptions, RevealedDiffEntry } from './divergence/diff.ts';
export { valueHash } from './events/redact.ts';
export type { ValueHashOptions } from './events/redact.ts';
export { callbackSink, loggerSink } from './events/event-sink.ts';
export type { EventSink, EventLogger, SinkOptions } from './events/event-sink.ts';
export { auditEventSink, auditEventOf, AUDIT_EVENT_SYSTEM } from './events/audit-event-sink.ts';
export type { AuditEventSinkOptions } from './events/audit-event-sink.ts';
export { redactEvent } from './events/event-redaction.ts';
export { compareCopies } from './divergence/compare-copies.ts';
export type { DivergenceOptions, DivergenceCounts } from './divergence/divergence-checks.ts';
export type { EventRedaction } from './events/event-redaction.ts';

export type { ChangeFeedsOptions } from './feeds/change-feeds-options.ts';
export type { FeedRecord, FeedRead } from './feeds/inbound-change.ts';
export type { FeedCounts, FeedReport, FeedFailure } from './feeds/feed-report.ts';
export type { ExistenceCheckHalt } from './feeds/existence-check.ts';
export type { RestHookRequest, RestHookResult } from './feeds/delete-notification.ts';

export type { ConflictContext, ConflictResolver, Resolution } from './conflict/conflict-context.ts';
export type { ConflictReport } from './conflict/conflict-report.ts';
export { ReviewRequiredError } from './conflict/conflict-report.ts';
export {
  authorityWins,
  legacyWins,
  medplumWins,
  lastWriterWins,
  threeWayMerge,
  manualReview,
  byResourceType,
} from './conflict/resolvers.ts';
export type { CollisionPolicy, ThreeWayMergeOptions } from './conflict/resolvers.ts';
export { mergeThreeWay } from './conflict/three-way-merge.ts';
export type {
  MergeCollision,
  MergeCollisionPolicy,
  MergeThreeWayOptions,
  MergeResult,
  DecidedCollision,
} from './conflict/three-way-merge.ts';
export { reviewTaskOf, REVIEW_TASK_SYSTEM } from './conflict/review-task.ts';

export { PostgresTableAdapter } from './adapters/postgres-table-adapter.ts';
export type {
  PostgresTableAdapterOptions,
  PostgresTableOptions,
  PostgresTableRow,
} from './adapters/postgres-table-adapter.ts';
export type { PostgresTombstoneOptions } from './adapters/postgres-table-tombstones.ts';
export { MysqlTableAdapter } from './adapters/mysql-table-adapter.ts';
export type {
  MysqlTableAdapterOptions,
  MysqlTableOptions,
  MysqlTableRow,
  MysqlPool,
  MysqlConnection,
  MysqlQueryable,
  MysqlQueryOptions,
  MysqlTombstoneOptions,
} from './adapters/mysql-table-adapter.ts';
export { classifyMysqlError } from './sql/mysql-errors.ts';
export type { MysqlErrorClass, MysqlErrorKind } from './sql/mysql-errors.ts';
export { sqlClientFromPg } from './sql/pg-client.ts';
export type { PgClientOptions, PgPool, PgPoolClient } from './sql/pg-client.ts';
export { sqlClientFromPglite } from './sql/pglite-client.ts';
export type { PgliteDatabase, PgliteQueryable, PgliteQueryResult } from './sql/pglite-client.ts';
export type { WriteStatement, WriteStatementRunner } from './sql/write-statement.ts';
export type {
  TelemetryOptions,
  MeterProviderLike,
  TracerProviderLike,
} from './telemetry/telemetry-options.ts';
export type { SqlClient, SqlQueryable, SqlResult } from './sql/sql-client.ts';

export { startConsole } from './console/console-server.ts';
export type { ConsoleOptions, ConsoleServer } from './console/console-server.ts';
export type {
  ConsoleOperator,
  ConsoleJournal,
  ConsoleUnit,
  ConsoleDeadLetter,
  ConsoleSelection,
  ConsoleBulkOutcome,
} from './console/console-operator.ts';
export type { RecordSources, RecordDiff, RecordPresence } from './console/record-diff.ts';

export { defineConfig } from './cli/dualwrite-config.ts';
export type { ConfigEnvironment, DualwriteConfig, DualwriteConfigModule } from './cli/dualwrite-config.ts';
