/**
 * A child process that runs FHIR test servers for the bench, so that a measurement can put
 * Medplum in a process of its own, as in production, instead of sharing the bench's event loop.
 * Driven by `FhirServerProcess` over IPC: `start` (with a latency) answers the new server's
 * base URL; `latency` changes a server's latency; `close` closes one.
 */
import { startFhirTestServer, type FhirTestServer } from '../src/testing/index.ts';

interface Request {
  readonly id: number;
  readonly op: 'start' | 'latency' | 'close';
  readonly latencyMs?: number;
  readonly baseUrl?: string;
}

const servers = new Map<string, FhirTestServer>();
const send = (message: object): void => {
  process.send?.(message);
};

process.on('message', (request: Request) => {
  void (async () => {
    try {
      if (request.op === 'start') {
        const server = await startFhirTestServer();
        server.faults.latency(request.latencyMs ?? 0);
        servers.set(server.baseUrl, server);
        send({ id: request.id, baseUrl: server.baseUrl });
      } else if (request.op === 'latency') {
        servers.get(request.baseUrl ?? '')?.faults.latency(request.latencyMs ?? 0);
        send({ id: request.id });
      } else {
        await servers.get(request.baseUrl ?? '')?.close();
        servers.delete(request.baseUrl ?? '');
        send({ id: request.id });
      }
    } catch (err) {
      send({ id: request.id, error: err instanceof Error ? err.message : String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
send({ ready: true });
