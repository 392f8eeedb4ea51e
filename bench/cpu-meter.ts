import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, type ELDHistogram } from 'node:perf_hooks';

/** What a stretch of work cost in CPU, and how long the event loop lagged meanwhile. */
export interface CpuReading {
  /** Wall time, ms. */
  readonly wallMs: number;
  /** This process's CPU time (user + system), ms. */
  readonly processMs: number;
  /** CPU time of the whole machine (all processes, all cores, not idle), ms; NaN off Linux. */
  readonly machineMs: number;
  /**
   * CPU time of the `postgres` processes given to {@link CpuMeter.stop} (our pool's backends),
   * or of every live one when none are given, ms.
   */
  readonly postgresMs: number;
  /** Cores on the machine. */
  readonly cores: number;
  /** Event-loop delay, mean and p99, ms. */
  readonly loopDelayMeanMs: number;
  readonly loopDelayP99Ms: number;
}

/**
 * Measures the CPU a stretch of work used, in this process and on the whole machine (from
 * `/proc/stat`), and the event loop's delay meanwhile, to tell whether a throughput figure is
 * bound by CPU (and whose) or by waiting.
 *
 * @example
 * ```ts
 * const cpu = CpuMeter.start();
 * await work();
 * const reading = cpu.stop();
 * ```
 */
export class CpuMeter {
  readonly #started = performance.now();
  readonly #process = process.cpuUsage();
  readonly #machine = machineTicks();
  readonly #postgres = processTicks('postgres');
  readonly #loop: ELDHistogram;

  private constructor() {
    this.#loop = monitorEventLoopDelay({ resolution: 5 });
    this.#loop.enable();
  }

  /** @returns A meter, running. */
  static start(): CpuMeter {
    return new CpuMeter();
  }

  /**
   * @param postgresPids - The server processes to count (`pg_backend_pid()` of our connections);
   *   all live `postgres` processes when omitted.
   * @returns What was used since {@link CpuMeter.start}.
   */
  stop(postgresPids?: readonly number[]): CpuReading {
    this.#loop.disable();
    const cpu = process.cpuUsage(this.#process);
    const machine = machineTicks();
    return {
      wallMs: performance.now() - this.#started,
      processMs: (cpu.user + cpu.system) / 1000,
      machineMs: (machine.busy - this.#machine.busy) * (1000 / 100),
      postgresMs: ticksSince(this.#postgres, processTicks('postgres'), postgresPids) * (1000 / 100),
      cores: machine.cores,
      loopDelayMeanMs: this.#loop.mean / 1e6,
      loopDelayP99Ms: this.#loop.percentile(99) / 1e6,
    };
  }
}

/** Busy clock ticks (USER_HZ, 100/s on Linux) of all cores since boot, from `/proc/stat`. */
function machineTicks(): { busy: number; cores: number } {
  try {
    const lines = readFileSync('/proc/stat', 'utf8').split('\n');
    const fields = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice: busy is user, nice,
    // system, irq and softirq (guest time is already in user; steal is another VM's).
    const busy = [0, 1, 2, 5, 6].reduce((sum, i) => sum + (fields[i] ?? 0), 0);
    return { busy, cores: lines.filter((line) => /^cpu\d/.test(line)).length };
  } catch {
    return { busy: Number.NaN, cores: Number.NaN };
  }
}

/**
 * Ticks used between two snapshots by the given processes (all in the later snapshot when
 * `pids` is omitted); a process started meanwhile counts from zero.
 */
function ticksSince(
  before: ReadonlyMap<number, number>,
  after: ReadonlyMap<number, number>,
  pids: readonly number[] = [...after.keys()],
): number {
  return pids.reduce((sum, pid) => sum + (after.get(pid) ?? 0) - (before.get(pid) ?? 0), 0);
}

/**
 * User + system clock ticks of each process with the given command name, by pid, from
 * `/proc/<pid>/stat`. Empty off Linux.
 */
function processTicks(command: string): Map<number, number> {
  const ticks = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return ticks;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== command) continue;
      // After the command: state is field 3; utime and stime are fields 14 and 15.
      const fields = stat.slice(close + 2).split(' ');
      ticks.set(Number(pid), Number(fields[11]) + Number(fields[12]));
    } catch {
      // The process ended between listing and reading.
    }
  }
  return ticks;
}
