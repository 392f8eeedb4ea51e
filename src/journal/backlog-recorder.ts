import { ConfigurationError } from '../errors.ts';
import { checkOptions, positiveMs } from '../option-checks.ts';
import type { BacklogRecording } from './operating-history.ts';

/**
 * How the backlog's history is sampled into the journal (`backlog_samples`), for the console's
 * backlog chart: a sample per unit (and one for every unit) per `stepMs`, whichever instance or
 * console records first in a step, deleted after `keepMs`.
 *
 * @example
 * ```ts
 * const history: BacklogHistoryOptions = { stepMs: 60_000, keepMs: 30 * 86_400_000 };
 * ```
 */
export interface BacklogHistoryOptions {
  /**
   * The step: one sample per unit per step.
   * @default 60000
   */
  readonly stepMs?: number | undefined;
  /**
   * How long samples are kept.
   * @default 2592000000 (30 days)
   */
  readonly keepMs?: number | undefined;
}

/**
 * The journal calls a {@link BacklogRecorder} makes (a `SyncStore` is one).
 *
 * @example
 * ```ts
 * const journal: BacklogJournal = store;
 * ```
 */
export interface BacklogJournal {
  recordBacklog(recording: BacklogRecording): Promise<void>;
}

/**
 * The defaults of {@link BacklogHistoryOptions}.
 *
 * @example
 * ```ts
 * await store.recordBacklog(DEFAULT_BACKLOG_HISTORY);
 * ```
 */
export const DEFAULT_BACKLOG_HISTORY: BacklogRecording = { stepMs: 60_000, keepMs: 30 * 86_400_000 };

/**
 * The sampling of a `backlogHistory` option, checked: its defaults filled in, or `undefined`
 * for `false` (no sampling).
 *
 * @param options - The option as given.
 * @param field - Its name, in errors.
 * @returns The recording, or `undefined`.
 * @throws {@link ConfigurationError} naming the field at fault.
 * @example
 * ```ts
 * const recording = backlogRecordingOf({ stepMs: 30_000 }, 'backlogHistory');
 * ```
 */
export function backlogRecordingOf(
  options: BacklogHistoryOptions | false | undefined,
  field: string,
): BacklogRecording | undefined {
  if (options === false) return undefined;
  const given = checkOptions(
    options,
    field,
    'configuration',
    { stepMs: positiveMs, keepMs: positiveMs },
    `${field}.`,
  );
  const stepMs = (given.stepMs as number | undefined) ?? DEFAULT_BACKLOG_HISTORY.stepMs;
  const keepMs = (given.keepMs as number | undefined) ?? DEFAULT_BACKLOG_HISTORY.keepMs;
  if (keepMs < stepMs)
    throw new ConfigurationError(`${field}.keepMs`, keepMs, `must be at least ${field}.stepMs (${stepMs})`);
  return { stepMs, keepMs };
}

/**
 * Samples the outbox's backlog into the journal now and every `stepMs`, in the background (a
 * timer that keeps no process alive). Samples are per step and idempotent across instances (the
 * first recording of a step wins), so every writer's runtime and every console may record at
 * once and leave one series. A failed recording is reported and tried again at the next step.
 *
 * @internal
 * @example
 * ```ts
 * const recorder = new BacklogRecorder(store, { stepMs: 60_000, keepMs: 30 * 86_400_000 }, console.error);
 * recorder.start();
 * await recorder.stop();
 * ```
 */
export class BacklogRecorder {
  readonly #journal: BacklogJournal;
  readonly #recording: BacklogRecording;
  readonly #onError: (error: unknown) => void;
  #timer: ReturnType<typeof setInterval> | undefined;
  #inFlight: Promise<void> | undefined;

  /**
   * @param journal - Where samples go.
   * @param recording - The step and how long samples are kept.
   * @param onError - Told of a failed recording.
   */
  constructor(journal: BacklogJournal, recording: BacklogRecording, onError: (error: unknown) => void) {
    this.#journal = journal;
    this.#recording = recording;
    this.#onError = onError;
  }

  /** Records now, then every step; a no-op when running. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#record();
    this.#timer = setInterval(() => this.#record(), this.#recording.stepMs);
    this.#timer.unref();
  }

  /** Stops the schedule once the recording in flight ends. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  #record(): void {
    // One recording at a time: a slow journal skips a step rather than piling up statements.
    if (this.#inFlight !== undefined) return;
    this.#inFlight = this.#journal
      .recordBacklog(this.#recording)
      .catch((err: unknown) => this.#onError(err))
      .finally(() => {
        this.#inFlight = undefined;
      });
  }
}
