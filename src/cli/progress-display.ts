import cliProgress from 'cli-progress';
import { formatDuration } from './command-output.ts';
import type { CliTerminal } from './terminal.ts';

/**
 * Where a long operation stands: `done` of `total` (when known), the rate and the time left.
 *
 * @example
 * ```ts
 * const progress: Progress = { done: 400, total: 1000, perSecond: 85, etaMs: 7000, unit: 'scanned' };
 * ```
 */
export interface Progress {
  readonly done: number;
  /** `undefined` when nobody knows how many there are. */
  readonly total: number | undefined;
  /** Items per second. */
  readonly perSecond: number;
  /** Milliseconds left at that rate; `undefined` without a total. */
  readonly etaMs: number | undefined;
  /** What `done` counts (`scanned`, `applied`). */
  readonly unit: string;
}

/**
 * Shows a long operation's progress on stderr: a bar with the rate and the time left when
 * stderr is a terminal (redrawn in place), plain lines at most every `intervalMs` otherwise (a
 * log, CI), the last one always printed by {@link ProgressDisplay.stop}.
 *
 * @example
 * ```ts
 * const display = new ProgressDisplay(terminal, 'backfill job 7');
 * display.update({ done: 200, total: 1000, perSecond: 80, etaMs: 10_000, unit: 'scanned' });
 * display.stop();
 * ```
 */
export class ProgressDisplay {
  readonly #terminal: CliTerminal;
  readonly #label: string;
  readonly #intervalMs: number;
  #bar: cliProgress.SingleBar | undefined;
  #last: Progress | undefined;
  #printedAt = 0;
  #printed: Progress | undefined;

  /**
   * @param terminal - Where to show it (stderr).
   * @param label - What runs, without values (`backfill job 7`).
   * @param intervalMs - Least time between two plain lines. @default 5000
   */
  constructor(terminal: CliTerminal, label: string, intervalMs = 5000) {
    this.#terminal = terminal;
    this.#label = label;
    this.#intervalMs = intervalMs;
  }

  /**
   * Shows where the operation stands now.
   *
   * @param progress - The figures.
   */
  update(progress: Progress): void {
    this.#last = progress;
    if (this.#terminal.stderr.isTTY === true) {
      this.#draw(progress);
      return;
    }
    const now = Date.now();
    if (this.#printed === undefined || now - this.#printedAt >= this.#intervalMs) this.#line(progress, now);
  }

  /**
   * Ends the display: the bar stays as last drawn; without a terminal the last figures are
   * printed once more if they changed since the last line.
   */
  stop(): void {
    this.#bar?.stop();
    this.#bar = undefined;
    const last = this.#last;
    if (this.#terminal.stderr.isTTY !== true && last !== undefined && last !== this.#printed) {
      this.#line(last, Date.now());
    }
  }

  #draw(progress: Progress): void {
    const payload = {
      rate: `${progress.perSecond.toFixed(1)}/s`,
      left: formatDuration(progress.etaMs),
      unit: progress.unit,
    };
    const total = progress.total ?? 0;
    if (this.#bar === undefined) {
      this.#bar = new cliProgress.SingleBar(
        {
          stream: this.#terminal.stderr,
          format:
            progress.total === undefined
              ? `${this.#label} {value} {unit} | {rate} | ETA {left}`
              : `${this.#label} [{bar}] {percentage}% | {value}/{total} {unit} | {rate} | ETA {left}`,
          hideCursor: true,
          barsize: 30,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      this.#bar.start(total, progress.done, payload);
    } else {
      if (progress.total !== undefined) this.#bar.setTotal(total);
      this.#bar.update(progress.done, payload);
    }
  }

  #line(progress: Progress, now: number): void {
    this.#printed = progress;
    this.#printedAt = now;
    const { done, total } = progress;
    const share =
      total === undefined
        ? `${done} ${progress.unit}`
        : `${done}/${total} ${progress.unit} (${total === 0 ? 100 : Math.floor((done / total) * 100)}%)`;
    this.#terminal.stderr.write(
      `${this.#label}: ${share}, ${progress.perSecond.toFixed(1)}/s, ETA ${formatDuration(progress.etaMs)}\n`,
    );
  }
}
