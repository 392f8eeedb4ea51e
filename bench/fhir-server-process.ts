import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type { SourcedServer } from './drain-trial.ts';

interface Reply {
  readonly id?: number;
  readonly ready?: boolean;
  readonly baseUrl?: string;
  readonly error?: string;
}

/**
 * FHIR test servers in a child process of their own (`fhir-server-child.ts`): Medplum as a
 * separate service, as it always is in production, so that neither the server nor the code
 * under test slows the other by sharing one event loop.
 *
 * @example
 * ```ts
 * const servers = await FhirServerProcess.start();
 * const server = await servers.server(0);
 * await server.close();
 * await servers.stop();
 * ```
 */
export class FhirServerProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  #next = 1;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (reply: Reply) => {
      if (reply.id === undefined) return;
      this.#pending.get(reply.id)?.(reply);
      this.#pending.delete(reply.id);
    });
  }

  /** Forks the child and waits until it listens for requests. */
  static async start(): Promise<FhirServerProcess> {
    const child = fork(fileURLToPath(new URL('./fhir-server-child.ts', import.meta.url)), [], {
      execPath: process.execPath,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the FHIR server process exited with ${String(code)}`)));
      child.on('message', (reply: Reply) => {
        if (reply.ready === true) resolve();
      });
    });
    return new FhirServerProcess(child);
  }

  /**
   * Starts a fresh server in the child.
   *
   * @param latencyMs - Delay added to every request.
   * @returns The server.
   */
  async server(latencyMs: number): Promise<SourcedServer> {
    const { baseUrl } = await this.#ask({ op: 'start', latencyMs });
    if (baseUrl === undefined) throw new Error('the FHIR server process answered no URL');
    return {
      baseUrl,
      setLatency: async (ms) => {
        await this.#ask({ op: 'latency', baseUrl, latencyMs: ms });
      },
      close: async () => {
        await this.#ask({ op: 'close', baseUrl });
      },
    };
  }

  /** Ends the child. */
  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.disconnect();
    await exited;
  }

  #ask(request: {
    readonly op: string;
    readonly latencyMs?: number;
    readonly baseUrl?: string;
  }): Promise<Reply> {
    const id = this.#next++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, (reply) => {
        if (reply.error !== undefined) reject(new Error(reply.error));
        else resolve(reply);
      });
      this.#child.send({ ...request, id });
    });
  }
}
