import type { Command } from 'commander';
import { DualWriter } from '../../dual-writer.ts';
import type { DrainReport } from '../../mirror/drainer.ts';
import { writerOptions } from '../dualwrite-config.ts';
import type { CliCommand } from '../command-context.ts';
import { formatTable } from '../command-output.ts';
import { EXIT_CODES } from '../exit-code.ts';
import { interruptible } from '../interruptible.ts';
import { duration } from '../option-parsers.ts';
import { ProgressDisplay } from '../progress-display.ts';

/** How often the drain's progress is read from the outbox. */
const PROGRESS_POLL_MS = 500;

function reportTable(report: DrainReport): string {
  const { remaining } = report;
  return formatTable(
    [
      ['applied', report.applied],
      ['retried', report.retried],
      ['dead-lettered', report.deadLettered],
      ['pending now', remaining.pending + remaining.leased + (remaining.waiting ?? 0)],
      ['dead letters open', remaining.dead],
    ] as const,
    [
      { header: 'drain', value: ([name]) => name },
      { header: 'count', value: ([, n]) => n, align: 'right' },
    ],
  );
}

/**
 * `dualwrite drain`: applies the pending mirrors here, with the service's mirror path and
 * retries, until the outbox holds none (dead letters aside) or `--timeout` passes. Ctrl-C stops
 * claiming; mirrors in hand finish, the rest stay pending.
 */
export const drainCommand: CliCommand = {
  register(program, context) {
    program
      .command('drain')
      .description('apply the pending mirrors here until the outbox is empty (Ctrl-C stops cleanly)')
      .option('--timeout <duration>', 'give up after this long', duration, 3_600_000)
      .action(async (options: { timeout: number }, command: Command) => {
        const config = await context.config(command);
        const output = context.output(command);
        const writer = new DualWriter(writerOptions(config));
        const display = new ProgressDisplay(context.terminal, 'drain');
        const counts = async (): Promise<number> => {
          const now = await config.store.outboxCounts();
          return now.pending + now.leased + (now.waiting ?? 0);
        };
        const started = Date.now();
        const atStart = await counts();
        let total = atStart;
        const show = (left: number): void => {
          const done = Math.max(total - left, 0);
          total = Math.max(total, done + left);
          const perSecond = done / Math.max((Date.now() - started) / 1000, 0.001);
          display.update({
            done,
            total,
            perSecond,
            etaMs: perSecond === 0 ? undefined : (left / perSecond) * 1000,
            unit: 'applied',
          });
        };
        const poll = setInterval(() => {
          void counts()
            .then(show)
            .catch(() => undefined);
        }, PROGRESS_POLL_MS);
        const { result, interrupted } = await interruptible(
          context.terminal,
          'stopping the drain',
          () => writer.pause(),
          async () => {
            const report = await writer.drain({ timeoutMs: options.timeout });
            // The last figures, from the drain's own report.
            const { remaining } = report;
            show(remaining.pending + remaining.leased + (remaining.waiting ?? 0));
            return report;
          },
        ).finally(() => {
          clearInterval(poll);
          display.stop();
        });
        // Mirrors backing off (waiting) are owed too: the drainer's own `timedOut` leaves them
        // out, and a drain that stopped with 40 mirrors waiting for their retry exited 0.
        const { remaining } = result;
        const owed = remaining.pending + remaining.leased + (remaining.waiting ?? 0);
        const report = { ...result, timedOut: owed > 0 && !interrupted };
        output.result({ drain: report }, () => reportTable(report));
        if (interrupted) context.exitWith(EXIT_CODES.interrupted);
        else if (owed > 0) {
          output.note(`drain: time limit reached with ${String(owed)} mirrors still pending (exit 1)`);
          context.exitWith(EXIT_CODES.failure);
        }
      });
  },
};
