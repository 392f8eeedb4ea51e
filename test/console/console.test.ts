import { get as httpGet } from 'node:http';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/index.ts';
import { startConsole, type ConsoleServer } from '../../src/console/console-server.ts';
import { openChromium } from './headless-chromium.ts';
import { MARKER, openConsoleState, type ConsoleState } from './console-fixture.ts';

/*
 * The web console in real headless Chromium (Debian's, driven by playwright-core), over a
 * demo-like migration on PostgreSQL and the HTTP FHIR test server.
 */

let state: ConsoleState;
let browser: { context: BrowserContext; close(): Promise<void> };
let local: ConsoleServer;

beforeAll(async () => {
  state = await openConsoleState('console_browser_test');
  browser = await openChromium();
  local = await startConsole({
    operator: state.operator,
    journal: state.store,
    records: state.records,
    port: 0,
  });
}, 180_000);

afterAll(async () => {
  await local.close();
  await browser.close();
  await state.close();
});

/** The status of a GET with the Host header given (fetch will not send another host's name). */
function statusWithHost(url: string, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { headers: { host } }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    request.on('error', reject);
  });
}

async function openPage(url: string): Promise<Page> {
  const page = await browser.context.newPage();
  await page.goto(url);
  return page;
}

describe('the web console', { timeout: 120_000 }, () => {
  it('shows units × stages with every readiness gate and its evidence, dead letters by reason, the reconciliation and the backfill, and no record values', async () => {
    const page = await openPage(local.url);
    const north = page.locator('tr[data-unit="north"]');
    expect(await north.textContent()).toContain('shadow');
    expect(await page.locator('tr[data-unit="south"]').textContent()).toContain('dual-write');
    expect(await north.locator('[data-verdict]').getAttribute('data-verdict')).toBe('not-ready');
    const gates = page.locator('[data-readiness="north"] tr[data-gate]');
    expect(await gates.count()).toBe(8);
    expect(
      await page.locator('[data-readiness="north"] tr[data-gate="maxDeadLetters"]').textContent(),
    ).toMatch(/1\s*0\s*open dead letters now\s*fail/);
    expect(
      await page.locator('[data-readiness="north"] tr[data-gate="maxMirrorLagP95Ms"]').textContent(),
    ).toContain('applied mirrors sampled');
    const group = page.locator('details[data-reason="RejectedError"]');
    expect(await group.locator('tr[data-dead-letter]').count()).toBe(3);
    expect(await page.locator('#reconcile').textContent()).toContain('missingInMedplum');
    expect(await page.locator('#backfills progress').count()).toBe(1);
    const html = await page.content();
    expect(html).not.toContain(MARKER);
    expect(html).not.toContain('Ann');
    await page.close();
  });

  it('shows a paused unit’s pause: how long, by whom and why', async () => {
    await state.operator.pauseUnit('south', { by: 'ops:maria', reason: 'legacy maintenance' });
    try {
      const page = await openPage(local.url);
      const south = page.locator('tr[data-unit="south"] td[data-paused]');
      expect(await south.getAttribute('data-paused')).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(await south.textContent()).toMatch(/paused .+ by ops:maria: legacy maintenance/);
      expect(await page.locator('tr[data-unit="north"] td[data-paused]').textContent()).toBe('running');
      await page.close();
    } finally {
      await state.operator.resumeUnit('south');
    }
  });

  it('draws the backlog and lag charts as SVG with their data', async () => {
    const page = await openPage(local.url);
    for (const chart of ['backlog', 'lag']) {
      const lines = page.locator(`svg[data-chart="${chart}"] polyline[data-series]`);
      expect(await lines.count()).toBeGreaterThan(0);
      const points = await lines.first().getAttribute('points');
      expect(points).toMatch(/^\d+(\.\d+)?,\d+(\.\d+)?/);
      const box = await page.locator(`svg[data-chart="${chart}"]`).boundingBox();
      expect(box?.width).toBeGreaterThan(100);
    }
    const lag = page.locator('svg[data-chart="lag"] polyline');
    const names = await Promise.all(
      Array.from({ length: await lag.count() }, (_, i) => lag.nth(i).getAttribute('data-series')),
    );
    expect(names).toEqual(['north', 'south']);
    await page.close();
  });

  it('retries a dead letter from the page after a confirmation: the journal requeues it and audits the action', async () => {
    const [letter] = await state.store.listDeadLetters();
    if (letter === undefined) throw new Error('expected a dead letter');
    const page = await openPage(local.url);
    await page.locator(`tr[data-dead-letter="${letter.id}"] button[data-action="retry"]`).click();
    await page.waitForSelector('button[data-confirm="yes"]');
    // Nothing happens before the confirmation.
    expect((await state.store.getDeadLetter(letter.id))?.status).toBe('open');
    await page.locator('button[data-confirm="yes"]').click();
    await page.waitForSelector('p.flash');
    expect(await page.locator('p.flash').textContent()).toBe(`Dead letter ${letter.id} queued again.`);
    expect(page.url()).not.toContain(letter.legacyId);
    expect((await state.store.getDeadLetter(letter.id))?.status).toBe('retried');
    expect(await state.store.hasPending(letter.resourceType, letter.legacyId)).toBe(true);
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({ action: 'retry', deadLetter: letter.id, outcome: 'done' });
    expect(audit?.data?.session).toMatch(/^[0-9a-f]{12}$/);
    expect(await page.locator(`tr[data-dead-letter="${letter.id}"]`).count()).toBe(0);
    await page.close();
  });

  it('says an action failed without quoting an error that is not the library’s', async () => {
    const [letter] = await state.store.listDeadLetters();
    if (letter === undefined) throw new Error('expected a dead letter');
    // The operator, but its retry fails with an error that names a value bare.
    const failing = new Proxy(state.operator, {
      get: (target, name) => {
        if (name === 'retryDeadLetter')
          return () => Promise.reject(new RangeError(`row ${MARKER}-1931 is out of range`));
        const value = Reflect.get(target, name) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    await using failingConsole = await startConsole({ operator: failing, journal: state.store, port: 0 });
    const page = await openPage(failingConsole.url);
    await page.locator(`tr[data-dead-letter="${letter.id}"] button[data-action="retry"]`).click();
    await page.locator('button[data-confirm="yes"]').click();
    await page.waitForSelector('p.flash');
    const flash = await page.locator('p.flash').textContent();
    expect(flash).toContain('retry failed: RangeError');
    expect(await page.content()).not.toContain(MARKER);
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({ action: 'retry', outcome: 'failed', error: 'RangeError' });
    expect((await state.store.getDeadLetter(letter.id))?.status).toBe('open');
    await page.close();
  });

  it('refuses an action name inherited by every object (toString), with the session’s own form', async () => {
    const open = await state.store.listDeadLetters();
    const [letter] = open;
    if (letter === undefined) throw new Error('expected a dead letter');
    const page = await openPage(local.url);
    // The session's own form token and cookie, the action renamed, confirmed, with what a bulk
    // action reads.
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    const answer = await page.request.post(new URL('/actions', local.url).href, {
      form: {
        csrf: csrf ?? '',
        action: 'toString',
        confirm: 'yes',
        reason: letter.reason.name,
        note: 'audit',
      },
      maxRedirects: 0,
      headers: { origin: new URL(local.url).origin },
    });
    expect(answer.status()).toBe(400);
    expect((await state.store.listDeadLetters()).map(({ id, status }) => ({ id, status }))).toEqual(
      open.map(({ id, status }) => ({ id, status })),
    );
    await page.close();
  });

  it('answers a form over 16 KiB with a 413, and audits the refusal with the client’s address', async () => {
    const answer = await fetch(new URL('/actions', local.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ action: 'retry', note: 'x'.repeat(17 * 1024) }),
      redirect: 'manual',
    });
    expect(answer.status).toBe(413);
    expect(await answer.text()).toContain('too large');
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({ action: 'unknown', outcome: 'refused', problem: 'too-large' });
    expect(audit?.data?.client).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    // The console still answers.
    expect((await fetch(local.url)).status).toBe(200);
  });

  it('refuses an action without the session’s CSRF token, and a Host that is not loopback', async () => {
    const [letter] = await state.store.listDeadLetters();
    if (letter === undefined) throw new Error('expected a dead letter');
    const forged = await fetch(new URL('/actions', local.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ action: 'retry', id: letter.id, confirm: 'yes' }),
      redirect: 'manual',
    });
    expect(forged.status).toBe(403);
    expect((await state.store.getDeadLetter(letter.id))?.status).toBe('open');
    // A page elsewhere reaching the console through DNS rebinding names its own host.
    expect(await statusWithHost(local.url, 'attacker.example:4780')).toBe(421);
    expect(await statusWithHost(local.url, `localhost:${new URL(local.url).port}`)).toBe(200);
  });
});

describe('a record’s diff', { timeout: 120_000 }, () => {
  let revealing: ConsoleServer;

  beforeAll(async () => {
    await state.divergeInMedplum('north-1', `${MARKER}Changed`);
    revealing = await startConsole({
      operator: state.operator,
      journal: state.store,
      records: state.records,
      revealValues: true,
      port: 0,
    });
  });
  afterAll(async () => {
    await revealing.close();
  });

  async function compare(url: string): Promise<Page> {
    const page = await openPage(url);
    await page.locator('form[data-compare] input[name="resourceType"]').fill('Patient');
    await page.locator('form[data-compare] input[name="legacyId"]').fill('north-1');
    await page.locator('button[data-action="compare"]').click();
    await page.waitForSelector('h1:has-text("north-1")');
    return page;
  }

  it('shows the paths that differ and never a value by default, and audits the request', async () => {
    const page = await compare(local.url);
    expect(await page.locator('tr[data-path="name[0].family"]').textContent()).toContain('changed');
    const html = await page.content();
    expect(html).not.toContain(MARKER);
    expect(page.url()).not.toContain('north-1');
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({
      action: 'diff',
      legacyId: 'north-1',
      revealed: false,
      differences: 1,
    });
    await page.close();
  });

  it('says a record exists on neither side, or on which side only, never that its copies agree', async () => {
    const cases = [
      ['nobody-here', 'neither', /exists on neither side/],
      // Written to legacy, its mirror refused by Medplum: a dead letter.
      ['north-9', 'legacy-only', /only in the legacy system/],
      ['north-1', 'both', /./],
    ] as const;
    for (const [legacyId, presence, text] of cases) {
      const page = await openPage(local.url);
      await page.locator('form[data-compare] input[name="resourceType"]').fill('Patient');
      await page.locator('form[data-compare] input[name="legacyId"]').fill(legacyId);
      await page.locator('button[data-action="compare"]').click();
      await page.waitForSelector(`h1:has-text("${legacyId}")`);
      const presenceLine = page.locator('[data-presence]');
      expect(await presenceLine.getAttribute('data-presence')).toBe(presence);
      expect(await presenceLine.textContent()).toMatch(text);
      if (presence !== 'both') expect(await page.content()).not.toContain('agree');
      await page.close();
    }
    // A record only Medplum holds: its legacy row deleted behind the writer's back.
    await state.legacy.delete('Patient', 'south-3');
    const page = await openPage(local.url);
    await page.locator('form[data-compare] input[name="resourceType"]').fill('Patient');
    await page.locator('form[data-compare] input[name="legacyId"]').fill('south-3');
    await page.locator('button[data-action="compare"]').click();
    await page.waitForSelector('h1:has-text("south-3")');
    expect(await page.locator('[data-presence]').getAttribute('data-presence')).toBe('medplum-only');
    expect(await page.locator('[data-presence]').textContent()).toMatch(/only in Medplum/);
    await page.close();
  });

  it('answers a type that has no mapping with a 400 naming the field, and audits the refusal', async () => {
    const page = await openPage(local.url);
    await page.locator('form[data-compare] input[name="resourceType"]').fill('Observation');
    await page.locator('form[data-compare] input[name="legacyId"]').fill('north-1');
    const [answer] = await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/diff'),
      page.locator('button[data-action="compare"]').click(),
    ]);
    expect(answer.status()).toBe(400);
    const error = page.locator('[data-error]');
    expect(await error.getAttribute('data-error')).toBe('InvalidInputError');
    expect(await error.getAttribute('data-field')).toBe('resourceType');
    expect(await error.textContent()).toContain('mapped types: Patient');
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({ action: 'diff', outcome: 'refused', field: 'resourceType' });
    await page.close();
  });

  it('answers a diff whose read fails with a 500 that quotes nothing of the error, and audits the failure', async () => {
    // What a legacy system's own error may say: the value, bare (no quotes to blank).
    state.legacy.failNext(1, new TypeError(`Cannot convert ${MARKER}-555-0100 to a BigInt`));
    const page = await openPage(local.url);
    await page.locator('form[data-compare] input[name="resourceType"]').fill('Patient');
    await page.locator('form[data-compare] input[name="legacyId"]').fill('north-2');
    const [answer] = await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/diff'),
      page.locator('button[data-action="compare"]').click(),
    ]);
    expect(answer.status()).toBe(500);
    const html = await page.content();
    expect(html).toContain('TypeError');
    expect(html).not.toContain(MARKER);
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({
      action: 'diff',
      resourceType: 'Patient',
      legacyId: 'north-2',
      outcome: 'failed',
      error: 'TypeError',
    });
    expect(JSON.stringify(audit)).not.toContain(MARKER);
    await page.close();
  });

  it('shows that record’s values only where the configuration reveals them, and keeps them out of the audit', async () => {
    const page = await compare(revealing.url);
    const row = await page.locator('tr[data-path="name[0].family"]').textContent();
    expect(row).toContain(`${MARKER}1`);
    expect(row).toContain(`${MARKER}Changed`);
    const [audit] = await state.store.listEvents({ type: 'console-action', limit: 1 });
    expect(audit?.data).toMatchObject({ action: 'diff', legacyId: 'north-1', revealed: true });
    expect(JSON.stringify(audit)).not.toContain(MARKER);
    await page.close();
  });
});

describe('the web console bound beyond loopback', { timeout: 120_000 }, () => {
  const token = 'a-long-enough-console-token';
  let wide: ConsoleServer;

  beforeAll(async () => {
    wide = await startConsole({
      operator: state.operator,
      journal: state.store,
      host: '0.0.0.0',
      port: 0,
      token,
    });
  });
  afterAll(async () => {
    await wide.close();
  });

  it('will not start without an access token', async () => {
    const error = await startConsole({
      operator: state.operator,
      journal: state.store,
      host: '0.0.0.0',
      port: 0,
    }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({ field: 'token' });
  });

  it('refuses a request without the token, and serves one with it', async () => {
    const port = new URL(wide.url).port;
    const url = `http://127.0.0.1:${port}/`;
    const refused = await fetch(url);
    expect(refused.status).toBe(401);
    const body = await refused.text();
    expect(body).not.toContain('data-unit');
    expect(body).toContain('Access token');
    const bearer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(bearer.status).toBe(200);
    expect(await bearer.text()).toContain('data-unit="north"');
    const wrong = await fetch(url, { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
  });

  it('keeps a signed-in session however many anonymous visitors come after it', async () => {
    const url = `http://127.0.0.1:${new URL(wide.url).port}/`;
    const cookieOf = (answer: Response) => (answer.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const first = await fetch(url);
    const before = cookieOf(first);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await first.text())?.[1] ?? '';
    const signIn = await fetch(new URL('/login', url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: before },
      body: new URLSearchParams({ csrf, token }),
      redirect: 'manual',
    });
    expect(signIn.status).toBe(303);
    // Signing in changes the session's id: one known before is worth nothing after.
    const cookie = cookieOf(signIn);
    expect(cookie).not.toBe(before);
    expect((await fetch(url, { headers: { cookie: before } })).status).toBe(401);
    expect((await fetch(url, { headers: { cookie } })).status).toBe(200);
    // More anonymous visitors than the console keeps sessions for (1,000), one after the other.
    for (let i = 0; i < 1_100; i++) {
      const anonymous = await fetch(url);
      expect(anonymous.status).toBe(401);
      await anonymous.arrayBuffer();
    }
    expect((await fetch(url, { headers: { cookie } })).status).toBe(200);
  });

  it('signs a browser in with the token through a form, never in the URL', async () => {
    const port = new URL(wide.url).port;
    const page = await openPage(`http://127.0.0.1:${port}/`);
    expect(await page.locator('tr[data-unit]').count()).toBe(0);
    await page.locator('input[name="token"]').fill('wrong-token-of-some-length');
    await page.locator('button[type="submit"]').click();
    await page.waitForSelector('[role="alert"]');
    await page.locator('input[name="token"]').fill(token);
    await page.locator('button[type="submit"]').click();
    await page.waitForSelector('tr[data-unit="north"]');
    expect(page.url()).toBe(`http://127.0.0.1:${port}/`);
    const [latest, previous] = await state.store.listEvents({ type: 'console-action', limit: 2 });
    expect(latest?.data).toMatchObject({ action: 'sign-in', outcome: 'done' });
    expect(previous?.data).toMatchObject({ action: 'sign-in', outcome: 'refused' });
    expect(JSON.stringify([latest, previous])).not.toContain(token);
    await page.close();
  });
});
