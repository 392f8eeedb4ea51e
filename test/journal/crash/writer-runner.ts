/**
 * The parent's side of the writer processes: spawns one, reads its JSON lines into a tally,
 * and kills it with SIGKILL a given time after it says it is ready.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { WriterProcessConfig } from './writer-process.ts';

const WRITER = join(import.meta.dirname, 'writer-process.ts');

/**
 * The writer processes running now, with what they last reported. No clock decides that one is
 * stuck: on a loaded machine a healthy process can be quiet for a long time (starting PGlite
 * alone took over 20 s under a load of 20), so only the test's own time limit ends a run that
 * does not finish, and {@link killWriters} then says where each process was.
 */
const alive = new Map<
  { kill(signal: NodeJS.Signals): boolean },
  { readonly mode: string; readonly fromBatch: number; inBatch: number; lastLineAt: number }
>();

/**
 * Kills every writer process still running (when a run is aborted), saying on stderr what each
 * was doing and how long it had been quiet.
 */
export function killWriters(): void {
  for (const [child, state] of alive) {
    const where = state.inBatch < 0 ? 'between batches' : `in batch ${state.inBatch}`;
    process.stderr.write(
      `killing a ${state.mode} process started at batch ${state.fromBatch}: ${where}, ` +
        `quiet for ${Date.now() - state.lastLineAt} ms\n`,
    );
    child.kill('SIGKILL');
  }
}

/** What the writer processes of one run reported, summed over all of them. */
export interface CrashTally {
  processes: number;
  kills: number;
  batchesFinished: number;
  writesFinished: number;
  retries: number;
  drained: number;
  deadLetterEvents: number;
  /** Dead-letter events by error name and status. */
  deadLetterErrors: Record<string, number>;
  /** Writes re-issued by a restarted process, by kind and what the legacy side did. */
  replays: Record<string, number>;
  /** The batch each killed process was in; -1 between batches (mirrors settling) or in a drain. */
  killedIn: number[];
  /** Per process: milliseconds from spawn to ready. */
  startupMs: number[];
}

/** A new, empty tally. */
export function emptyTally(): CrashTally {
  return {
    processes: 0,
    kills: 0,
    batchesFinished: 0,
    writesFinished: 0,
    retries: 0,
    drained: 0,
    deadLetterEvents: 0,
    deadLetterErrors: {},
    replays: {},
    killedIn: [],
    startupMs: [],
  };
}

/** How a writer process ended. */
export interface WriterExit {
  readonly killed: boolean;
  readonly code: number | null;
  readonly stderr: string;
}

/** When to SIGKILL a writer process: `afterMs` once it is ready and has finished `afterBatches` batches. */
export interface KillPlan {
  readonly afterBatches: number;
  readonly afterMs: number;
}

/**
 * Runs one writer process to its end.
 *
 * @param config - The process's configuration.
 * @param tally - Where its reports are counted.
 * @param options - `kill`: when to kill it (it may end first); `onBatch`: called with the
 *   run's total of finished batches after each one.
 * @returns How it ended.
 * @throws When it exits on its own with a non-zero code.
 */
export async function runWriter(
  config: WriterProcessConfig,
  tally: CrashTally,
  options: { readonly kill?: KillPlan | undefined; readonly onBatch?: (finished: number) => void } = {},
): Promise<WriterExit> {
  const child = spawn(process.execPath, [WRITER, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  tally.processes += 1;
  const spawnedAt = Date.now();
  const state = { mode: config.mode, fromBatch: config.fromBatch, inBatch: -1, lastLineAt: spawnedAt };
  alive.set(child, state);
  let stderr = '';
  let killed = false;
  let timer: NodeJS.Timeout | undefined;
  let batchesHere = 0;
  const armKill = (): void => {
    const { kill } = options;
    if (kill === undefined || timer !== undefined || batchesHere < kill.afterBatches) return;
    timer = setTimeout(() => {
      killed = child.kill('SIGKILL');
      if (killed) tally.killedIn.push(state.inBatch);
    }, kill.afterMs);
  };
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (text) => {
    state.lastLineAt = Date.now();
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      stderr += `${text}\n`;
      return;
    }
    if (line.ready === true) {
      tally.startupMs.push(Date.now() - spawnedAt);
      armKill();
    } else if (typeof line.start === 'number') state.inBatch = line.start;
    else if (typeof line.batch === 'number') {
      state.inBatch = -1;
      batchesHere += 1;
      armKill();
      tally.batchesFinished += 1;
      tally.writesFinished += Number(line.writes);
      options.onBatch?.(tally.batchesFinished);
    } else if (typeof line.replayed === 'string')
      count(tally.replays, `${line.replayed}:${String(line.legacy)}`);
    else if (line.event === 'retry') tally.retries += 1;
    else if (line.event === 'drained') tally.drained += 1;
    else if (line.event === 'dead-letter') {
      tally.deadLetterEvents += 1;
      count(tally.deadLetterErrors, `${String(line.error)}:${String(line.status)}`);
    }
  });
  const exit = await new Promise<WriterExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      alive.delete(child);
      resolve({ killed: killed && signal === 'SIGKILL', code, stderr });
    });
  });
  if (exit.killed) tally.kills += 1;
  else if (exit.code !== 0)
    throw new Error(`${config.mode} process exited with ${String(exit.code)}:\n${exit.stderr}`);
  return exit;
}

/**
 * The batch after the last one a writer process finished, from the progress file.
 *
 * @param progressFile - The file the processes append finished batch indexes to.
 * @returns The first batch still to run.
 */
export function nextBatch(progressFile: string): number {
  let text = '';
  try {
    text = readFileSync(progressFile, 'utf8');
  } catch {
    return 0;
  }
  return Math.max(-1, ...text.split('\n').filter(Boolean).map(Number)) + 1;
}

function count(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}
