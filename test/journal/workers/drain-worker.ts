/**
 * The parent's handle on a drain process: spawns it, collects the leases it reports, and stops
 * it gracefully.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { DrainProcessConfig } from './drain-process.ts';
import type { LeaseReport } from './lease-log.ts';

const DRAIN_PROCESS = join(import.meta.dirname, 'drain-process.ts');

/** A drain process and the leases it reported. */
export class DrainWorker {
  readonly id: string;
  readonly leases: LeaseReport[] = [];
  /** Settles once the process's drainer runs; rejects if it exits first. */
  readonly ready: Promise<void>;
  readonly #child: ChildProcessByStdio<null, Readable, Readable>;
  readonly #exited: Promise<number | null>;
  #stderr = '';

  /** @param config - The process's configuration. */
  constructor(config: DrainProcessConfig) {
    this.id = config.workerId;
    this.#child = spawn(process.execPath, [DRAIN_PROCESS, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stderr.on('data', (chunk: Buffer) => (this.#stderr += chunk.toString()));
    let markReady: () => void = () => undefined;
    let failReady: (error: Error) => void = () => undefined;
    this.ready = new Promise((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    createInterface({ input: this.#child.stdout }).on('line', (text) => {
      const line = JSON.parse(text) as { ready?: boolean; lease?: LeaseReport };
      if (line.ready === true) markReady();
      if (line.lease !== undefined) this.leases.push(line.lease);
    });
    this.#exited = new Promise((resolve, reject) => {
      this.#child.on('error', reject);
      this.#child.on('close', (code) => {
        failReady(
          new Error(`drain process exited with ${String(code)} before it was ready:\n${this.#stderr}`),
        );
        resolve(code);
      });
    });
  }

  /** Stops the drainer gracefully and waits for the process to exit. */
  async stop(): Promise<void> {
    this.#child.kill('SIGTERM');
    const code = await this.#exited;
    if (code !== 0) throw new Error(`drain process exited with ${String(code)}:\n${this.#stderr}`);
  }

  /** What the process wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Leases this worker completed: the entry applied and removed. */
  get applied(): LeaseReport[] {
    return this.leases.filter((lease) => lease.finish === 'complete' && lease.outcome === 'done');
  }
}
