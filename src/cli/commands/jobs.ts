import { Option, type Command } from 'commander';
import { DualWriter } from '../../dual-writer.ts';
import { InvalidInputError } from '../../errors.ts';
import type { JobProgress } from '../../jobs/job-worker.ts';
import type { Job, JobDirection, JobKind } from '../../journal/job.ts';
import type { Operator } from '../../operator/operator.ts';
import type { SyncStore } from '../../journal/sync-store.ts';
import { formatDuration } from '../command-output.ts';
import type { CliCommand, CommandContext } from '../command-context.ts';
import { writerOptions } from '../dualwrite-config.ts';
import { EXIT_CODES } from '../exit-code.ts';
import { interruptible } from '../interruptible.ts';
import { drainJob } from '../job-drain.ts';
import { requireKnownUnit } from '../known-units.ts';
import { describeJob, jobDocument, jobTable } from '../job-document.ts';
import { duration, positiveInteger } from '../option-parsers.ts';
import { ProgressDisplay } from '../progress-display.ts';

interface RunOptions {
  readonly pageSize?: number;
  readonly total?: number;
  readonly drain?: boolean;
  readonly drainTimeout: number;
  readonly repair?: 'none' | 'queue';
}

interface StartOptions extends RunOptions {
  readonly type: string;
  readonly unit?: string;
  readonly direction?: JobDirection;
}

/** What a foreground run works on: a new job of this scope, or an existing job (`jobId`). */
interface JobScope {
  readonly kind: JobKind;
  readonly resourceType: string;
  readonly unit: string | undefined;
  readonly direction: JobDirection | undefined;
  readonly jobId?: string | undefined;
}

type AnyOperator = Operator<unknown, unknown>;

/** The job named on the command line, of this kind. */
async function requireJob(operator: AnyOperator, kind: JobKind, id: string): Promise<Job> {
  const job = await operator.job(id);
  if (job.kind !== kind) throw new InvalidInputError('id', `names a ${job.kind} job, not a ${kind}`);
  return job;
}

/**
 * How many records a job will scan, for the ETA: `--total`, else what the last finished job
 * over the same type and unit scanned (a backfill before a reconciliation, the last run before
 * this one); unknown otherwise.
 */
async function expectedTotal(
  operator: AnyOperator,
  scope: JobScope,
  given: number | undefined,
): Promise<number | undefined> {
  if (given !== undefined) return given;
  const [last] = await operator.jobs({
    resourceType: scope.resourceType,
    ...(scope.unit === undefined ? {} : { unit: scope.unit }),
    state: 'done',
    limit: 1,
  });
  return last?.counts.scanned;
}

/** How long a job may take no page before the command says why it waits, and how often after. */
const HEARTBEAT_MS = 5000;

/** Most mirrors queued before a backfill takes another page (the backfill's `maxQueued`). */
const MAX_QUEUED = 1000;

/**
 * Why a job has taken no page for a while, as a line for stderr (no values): the outbox is full
 * and nothing here drains it (`--no-drain`: a drainer elsewhere must), or it is drained here
 * first; pages taken and not done (this worker's, or a dead worker's whose lease must expire
 * first); or just slow.
 */
async function whyWaiting(
  operator: AnyOperator,
  store: SyncStore,
  scope: JobScope,
  jobId: string | undefined,
  since: number,
  draining: boolean,
): Promise<string> {
  const name = `${scope.kind} job ${jobId ?? '(starting)'}`;
  const quiet = formatDuration(Date.now() - since);
  const { pending, leased } = await store.outboxCounts();
  if (scope.kind === 'backfill' && pending + leased >= MAX_QUEUED) {
    return draining
      ? `${name}: no page for ${quiet}: draining the outbox here first (${String(pending + leased)} mirrors queued; a page waits while ${String(MAX_QUEUED)} are)`
      : `${name}: no page for ${quiet}: waiting for the outbox (${String(pending + leased)} mirrors queued; a page waits while ${String(MAX_QUEUED)} are) and nothing drains it here (--no-drain): start the service's drainers or run \`dualwrite drain\`, or Ctrl-C to pause`;
  }
  const job = jobId === undefined ? undefined : await operator.job(jobId);
  const open = job === undefined ? 0 : job.pages - job.pagesDone;
  if (open > 0) {
    return `${name}: no page for ${quiet}: ${String(open)} page(s) taken and not done (in hand here, or held by another worker; a worker that died holds its page until its lease expires, about a minute)`;
  }
  return `${name}: no page for ${quiet}: still reading`;
}

/**
 * Runs this process's share of a job in the foreground, through the operator API: a progress
 * display, the queued mirrors drained here unless `--no-drain`, and Ctrl-C stopping this worker
 * after the page in hand and pausing the job (every worker), so that `resume` goes on from its
 * cursor.
 */
async function runInForeground(
  context: CommandContext,
  command: Command,
  scope: JobScope,
  options: RunOptions,
): Promise<void> {
  const config = await context.config(command);
  const operator = await context.operator(command);
  const output = context.output(command);
  const total = await expectedTotal(operator, scope, options.total);
  // The display is named after the job, known from its first page on.
  let display = undefined as ProgressDisplay | undefined;
  const writer = options.drain === false ? undefined : new DualWriter(writerOptions(config));
  const controller = new AbortController();
  // A job that takes no page for a while says why, rather than going silent (see heartbeat).
  let lastProgressAt = Date.now();
  let jobId = scope.jobId;
  const onProgress = (progress: JobProgress): void => {
    lastProgressAt = Date.now();
    jobId = progress.job.id;
    const done = progress.job.counts.scanned ?? 0;
    const left = total === undefined ? undefined : Math.max(total - done, 0);
    display ??= new ProgressDisplay(context.terminal, `${scope.kind} job ${progress.job.id}`);
    display.update({
      done,
      total: total === undefined ? undefined : Math.max(total, done),
      perSecond: progress.recordsPerSecond,
      etaMs:
        left === undefined || progress.recordsPerSecond === 0
          ? undefined
          : (left / progress.recordsPerSecond) * 1000,
      unit: 'scanned',
    });
  };
  const worker = {
    resourceType: scope.resourceType,
    signal: controller.signal,
    onProgress,
    ...(scope.jobId === undefined ? {} : { jobId: scope.jobId }),
    ...(scope.unit === undefined ? {} : { unit: scope.unit }),
    ...(scope.direction === undefined ? {} : { direction: scope.direction }),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
  };
  const heartbeat = setInterval(() => {
    if (Date.now() - lastProgressAt < HEARTBEAT_MS) return;
    void whyWaiting(operator, config.store, scope, jobId, lastProgressAt, writer !== undefined)
      .then((line) => {
        if (!finished) output.note(line);
      })
      .catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  let finished = false;
  const stopHeartbeat = (): void => {
    finished = true;
    clearInterval(heartbeat);
  };
  const { result, interrupted } = await interruptible(
    context.terminal,
    `pausing the ${scope.kind}`,
    () => {
      controller.abort();
      writer?.pause();
    },
    async () => {
      const ran =
        scope.kind === 'backfill'
          ? await operator.backfill({
              direction: 'to-medplum',
              ...worker,
              ...(writer === undefined ? {} : { drain: () => writer.drain() }),
            })
          : await operator.reconcile({ ...worker, repair: options.repair ?? 'none' });
      stopHeartbeat();
      display?.stop();
      // What the job queued is applied here too, unless the service's drainers are left to it:
      // until the job's type and unit owe no mirror, or the limit (then exit 1, saying how many).
      const drained =
        writer !== undefined && ran.state === 'done' && !controller.signal.aborted
          ? await drainJob(
              context.terminal,
              `${scope.kind} job ${ran.id} drain`,
              writer,
              config.store,
              { resourceType: ran.resourceType, unit: ran.unit },
              options.drainTimeout,
              () => controller.signal.aborted,
            )
          : undefined;
      return { ran, drained };
    },
  ).finally(() => {
    stopHeartbeat();
    display?.stop();
  });
  const { ran, drained } = result;
  // This worker stopped after its page; pausing the job stops every other worker too.
  const after = interrupted && ran.state === 'running' ? await operator.pauseJob(ran.id) : ran;
  output.result({ job: jobDocument(after), ...(drained === undefined ? {} : { drain: drained }) }, () =>
    describeJob(after),
  );
  const name = `${after.kind} job ${after.id}`;
  if (drained !== undefined && drained.remaining > 0 && !interrupted) {
    output.note(
      `${name}: the drain's time limit (--drain-timeout) came with ${String(drained.remaining)} mirrors still pending; ` +
        "apply them with `dualwrite drain` or leave them to the service's drainers",
    );
    context.exitWith(EXIT_CODES.failure);
  } else if (interrupted && after.state === 'paused') {
    output.note(`${name} paused: resume with \`dualwrite ${after.kind} resume ${after.id}\``);
    context.exitWith(EXIT_CODES.interrupted);
  } else if (interrupted) {
    // Ctrl-C after the last page: the job is done; what its drain had not applied is still queued.
    output.note(
      drained === undefined
        ? `${name} ${after.state} (interrupted after its last page)`
        : `${name} ${after.state}; its drain was stopped with ${String(drained.remaining)} mirrors still pending: apply them with \`dualwrite drain\``,
    );
    context.exitWith(EXIT_CODES.interrupted);
  } else if (after.state !== 'done') {
    output.note(`${name} ended ${after.state}${after.reason === undefined ? '' : `: ${after.reason}`}`);
    context.exitWith(EXIT_CODES.failure);
  }
}

function runOptions(command: Command, kind: JobKind): Command {
  command
    .option('--page-size <n>', 'records per page', positiveInteger)
    .option(
      '--total <n>',
      'how many records to expect, for the ETA (default: what the last finished job scanned)',
      positiveInteger,
    )
    .option(
      '--drain-timeout <duration>',
      'how long the drain after the job may take; mirrors still owed then: exit 1 (default 1h)',
      duration,
      3_600_000,
    );
  if (kind === 'backfill') {
    command.option('--no-drain', "queue only: leave the mirrors to the service's drainers");
  } else {
    command.addOption(
      new Option('--repair <mode>', 'queue mirrors for what differs')
        .choices(['none', 'queue'])
        .default('none'),
    );
  }
  return command;
}

function jobCommand(kind: JobKind, summary: string): CliCommand {
  return {
    register(program, context) {
      const group = program.command(kind).description(summary);

      runOptions(
        group
          .command('start')
          .description(
            `start a ${kind} of one resource type and run it here, with progress (Ctrl-C pauses it)`,
          )
          .requiredOption('-t, --type <resourceType>', 'the resource type')
          .option('-u, --unit <unit>', "one unit's records (default: every unit)")
          .addOption(
            new Option(
              '-d, --direction <direction>',
              kind === 'backfill'
                ? 'to-medplum (default) or to-legacy'
                : "the reference side (default: the unit's authority)",
            ).choices(['to-medplum', 'to-legacy']),
          ),
        kind,
      ).action(async (options: StartOptions, command: Command) => {
        const config = await context.config(command);
        if (!config.mappings.some((mapping) => mapping.resourceType === options.type)) {
          throw new InvalidInputError('--type', 'has no mapping in the configuration');
        }
        // A typo ran a whole scan that skipped every record and ended `done` (exit 0).
        if (options.unit !== undefined) {
          await requireKnownUnit(await context.operator(command), options.unit, '--unit');
        }
        const direction = options.direction ?? (options.unit === undefined ? 'to-medplum' : undefined);
        await runInForeground(
          context,
          command,
          { kind, resourceType: options.type, unit: options.unit, direction },
          options,
        );
      });

      runOptions(
        group
          .command('resume')
          .description(`resume a paused or failed ${kind} (or join a running one) and run it here`)
          .argument('<id>', 'the job'),
        kind,
      ).action(async (id: string, options: RunOptions, command: Command) => {
        const operator = await context.operator(command);
        const job = await requireJob(operator, kind, id);
        const running = job.state === 'running' ? job : await operator.resumeJob(id);
        if (running.state !== 'running') {
          throw new InvalidInputError('id', `names a ${job.state} job, which cannot resume`);
        }
        await runInForeground(
          context,
          command,
          { kind, resourceType: job.resourceType, unit: job.unit, direction: job.direction, jobId: job.id },
          options,
        );
      });

      group
        .command('status')
        .description(`one ${kind} job, or the latest ones`)
        .argument('[id]', 'the job (default: the latest jobs)')
        .option('--limit <n>', 'most jobs listed', positiveInteger, 20)
        .action(async (id: string | undefined, options: { limit: number }, command: Command) => {
          const operator = await context.operator(command);
          const output = context.output(command);
          if (id !== undefined) {
            const job = await requireJob(operator, kind, id);
            output.result({ job: jobDocument(job) }, () => describeJob(job));
            return;
          }
          const jobs = await operator.jobs({ kind, limit: options.limit });
          output.result({ jobs: jobs.map(jobDocument) }, () => jobTable(jobs));
        });

      group
        .command('pause')
        .description(`pause a running ${kind}: every worker stops after its page in hand`)
        .argument('<id>', 'the job')
        .action(async (id: string, _options: unknown, command: Command) => {
          const operator = await context.operator(command);
          const job = await requireJob(operator, kind, id);
          const paused = await operator.pauseJob(id);
          if (paused.state !== 'paused') {
            throw new InvalidInputError('id', `names a ${job.state} job, which cannot pause`);
          }
          context.output(command).result({ job: jobDocument(paused) }, () => describeJob(paused));
        });

      group
        .command('cancel')
        .description(`cancel a ${kind} for good (asks first unless --yes)`)
        .argument('<id>', 'the job')
        .option('-y, --yes', 'do not ask')
        .action(async (id: string, options: { yes?: boolean }, command: Command) => {
          const operator = await context.operator(command);
          const job = await requireJob(operator, kind, id);
          await context.confirm(`cancel ${kind} job ${id} (${job.state}, ${job.resourceType})`, options.yes);
          const cancelled = await operator.cancelJob(id);
          if (cancelled.state !== 'cancelled') {
            throw new InvalidInputError('id', `names a ${job.state} job, which cannot be cancelled`);
          }
          context.output(command).result({ job: jobDocument(cancelled) }, () => describeJob(cancelled));
        });
    },
  };
}

/** `dualwrite backfill start|resume|status|pause|cancel`. */
export const backfillCommand = jobCommand(
  'backfill',
  'mirror the records that exist already (a job in the journal: resumable, shared by workers)',
);

/** `dualwrite reconcile start|resume|status|pause|cancel`. */
export const reconcileCommand = jobCommand(
  'reconcile',
  'compare both sides record by record, and optionally queue repairs (a job in the journal)',
);
