import { ConfigurationError } from '../errors.ts';
import type { DualWriteEvent } from '../dual-write-event.ts';
import { checkOptions, trueOrFalse, type Shape } from '../option-checks.ts';

/**
 * Where a writer's events go. A sink sees every event with field values replaced by hashes,
 * unless it sets `revealValues` (then it holds PHI: keep its output out of ordinary logs).
 * `handle` may be async; its failures are ignored (an observer must never fail a write), and the
 * writer does not wait for it.
 *
 * @example
 * ```ts
 * const counter: EventSink = { handle: (event) => void metrics.increment(event.type) };
 * new DualWriter({ ...options, sinks: [counter, loggerSink(pino())] });
 * ```
 */
export interface EventSink {
  /**
   * Show field values (PHI) to this sink instead of their hashes.
   * @default false
   */
  readonly revealValues?: boolean | undefined;
  /** Receives one event. */
  handle(event: DualWriteEvent): void | Promise<void>;
}

/**
 * Options shared by the built-in sinks.
 *
 * @example
 * ```ts
 * loggerSink(logger, { revealValues: true }); // for a restricted audit log only
 * ```
 */
export interface SinkOptions {
  /**
   * Show field values (PHI) instead of their hashes.
   * @default false
   */
  readonly revealValues?: boolean | undefined;
}

/**
 * A sink that calls a function (what `onEvent` does).
 *
 * @param fn - Receives each event.
 * @param options - Whether to reveal values.
 * @returns The sink.
 * @throws {@link ConfigurationError} naming `fn`, `options` or the option at fault.
 * @example
 * ```ts
 * const seen: DualWriteEvent[] = [];
 * new DualWriter({ ...options, sinks: [callbackSink((event) => seen.push(event))] });
 * ```
 */
export function callbackSink(
  fn: (event: DualWriteEvent) => void | Promise<void>,
  options: SinkOptions = {},
): EventSink {
  if (typeof fn !== 'function') throw new ConfigurationError('fn', fn, 'must be a function (event) => void');
  return { revealValues: revealValuesOf(options, SINK_OPTIONS), handle: fn };
}

/**
 * The logger a {@link loggerSink} writes to: pino's shape (`logger.warn(object, message)`), which
 * bunyan, winston's child loggers and many others also accept.
 *
 * @example
 * ```ts
 * const logger: EventLogger = pino();
 * ```
 */
export interface EventLogger {
  debug(object: object, message: string): void;
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
}

/** Disagreements and failures are warnings; retries information; routine mirrors debug. */
const LEVELS: Readonly<Record<DualWriteEvent['type'], keyof EventLogger>> = {
  conflict: 'warn',
  divergence: 'warn',
  'dead-letter': 'warn',
  'mirror-failed': 'warn',
  'journal-error': 'warn',
  'plan-stale': 'warn',
  'existence-check-halted': 'warn',
  resolved: 'info',
  retry: 'info',
  mirrored: 'debug',
  drained: 'debug',
  'mirror-settled': 'debug',
  'feed-read': 'debug',
};

/**
 * Every event type a writer emits. Internal: the built-in sinks check the types they are given
 * against it.
 *
 * @example
 * ```ts
 * EVENT_TYPES.includes('conflict'); // true
 * ```
 */
export const EVENT_TYPES = Object.keys(LEVELS) as readonly DualWriteEvent['type'][];

/** The options every built-in sink takes. Internal. */
export const SINK_OPTIONS: Shape = { revealValues: trueOrFalse };

/**
 * Checks a built-in sink's options against its shape.
 *
 * @param options - What the caller passed.
 * @param shape - The sink's options ({@link SINK_OPTIONS} and its own).
 * @returns Whether the sink reveals values.
 * @throws {@link ConfigurationError} naming `options` or the option at fault.
 * @example
 * ```ts
 * const reveal = revealValuesOf(options, SINK_OPTIONS);
 * ```
 */
export function revealValuesOf(options: unknown, shape: Shape): boolean {
  return checkOptions(options, 'options', 'configuration', shape).revealValues === true;
}

/**
 * A sink that logs each event as one structured line (`{ event: 'conflict', … }`) at a level by
 * type: `conflict`, `divergence`, `dead-letter`, `mirror-failed`, `journal-error` and `plan-stale` warn; `resolved` and `retry`
 * info; `mirrored`, `drained`, `mirror-settled` and `feed-read` debug.
 *
 * @param logger - A pino-style logger.
 * @param options - Whether to reveal values.
 * @returns The sink.
 * @throws {@link ConfigurationError} naming the logger method, `options` or the option at fault.
 * @example
 * ```ts
 * import pino from 'pino';
 * new DualWriter({ ...options, sinks: [loggerSink(pino({ name: 'dualwrite' }))] });
 * ```
 */
export function loggerSink(logger: EventLogger, options: SinkOptions = {}): EventSink {
  for (const level of ['debug', 'info', 'warn'] as const) {
    const method = (logger as Partial<EventLogger> | null | undefined)?.[level];
    if (typeof method !== 'function')
      throw new ConfigurationError(`logger.${level}`, method, 'must be a function (object, message) => void');
  }
  return {
    revealValues: revealValuesOf(options, SINK_OPTIONS),
    handle: (event) => {
      const { type, ...rest } = event;
      logger[LEVELS[type]]({ event: type, ...rest }, `dualwrite ${type}`);
    },
  };
}
