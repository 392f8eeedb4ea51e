import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCliWorld, until, type CliBuild, type CliWorld } from './cli-harness.ts';

/*
 * `dualwrite console` as a process: it serves the console from the configuration until Ctrl-C.
 * The browser tests of the page itself are in test/console.
 */

let world: CliWorld;
let cli: CliBuild;

/** A port free now (the console is told to use it, so the test knows where to look). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

beforeAll(async () => {
  // The configuration opens the journal; the console never reads the legacy table.
  world = await openCliWorld('cli_console');
  cli = world.cli;
}, 180_000);

afterAll(async () => {
  await world.close();
});

describe('dualwrite console', { timeout: 120_000 }, () => {
  it('serves the console on loopback until Ctrl-C, then exits 0', async () => {
    const port = await freePort();
    const running = cli.start(['console', '--port', String(port)]);
    await until(() => running.stderr().includes('Ctrl-C stops it') || running.finished());
    expect(running.finished(), running.stderr()).toBe(false);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('data-unit="north"');
    expect(html).toContain('data-chart="backlog"');
    running.interrupt();
    const result = await running.done;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`console at http://127.0.0.1:${port}/\n`);
  });

  it('bound beyond loopback, makes an access token, prints it once, and refuses requests without it', async () => {
    const port = await freePort();
    const running = cli.start(['console', '--host', '0.0.0.0', '--port', String(port), '--json']);
    await until(() => running.stderr().includes('Ctrl-C stops it') || running.finished());
    const token = /access token \([^)]*\): (\S+)/.exec(running.stderr())?.[1];
    expect(token, running.stderr()).toMatch(/^[\w-]{32}$/);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(401);
    const signedIn = await fetch(`http://127.0.0.1:${port}/`, {
      headers: { authorization: `Bearer ${token ?? ''}` },
    });
    expect(signedIn.status).toBe(200);
    running.interrupt();
    const result = await running.done;
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ url: `http://0.0.0.0:${port}/`, requiresToken: true });
  });

  it('refuses a port that is not one, as a usage error', async () => {
    const result = await cli.run(['console', '--port', '99999']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('must be a port');
  });
});
