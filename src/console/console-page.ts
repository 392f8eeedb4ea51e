import type { Job } from '../journal/job.ts';
import type { Readiness, ReadinessGates } from '../plan/readiness.ts';
import type { ConsoleDeadLetter, ConsoleUnit } from './console-operator.ts';
import type { ConsoleView } from './console-view.ts';
import type { RecordDiff } from './record-diff.ts';
import { html, SafeHtml } from './html-text.ts';
import { lineChart, type ChartSeries } from './svg-chart.ts';

/*
 * The console's pages, rendered on the server. No script: actions are forms that POST with the
 * session's CSRF token, and every destructive one goes through a confirmation page first.
 * Nothing here prints a field of a record: ids, units, types, stages, counts and error names.
 */

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 48px;color:#222}
h1{font-size:20px;margin:16px 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.pass{color:#076b2f}.fail{color:#b00020;font-weight:600}.unknown{color:#8a5a00}.muted{color:#777}
.flash{background:#eef6ff;border:1px solid #9cc3ee;padding:6px 10px;margin:10px 0}
.legend{margin-left:12px}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
form.inline{display:inline}figure.chart{margin:8px 0 16px}details{margin:4px 0}
`;

/** The page frame: title, style, and (for the dashboard) a refresh every 30 s. */
function page(title: string, body: SafeHtml | readonly SafeHtml[], refresh = false): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>${title}</title>
        ${refresh ? html`<meta http-equiv="refresh" content="30" />` : ''}
        <style>
          ${new SafeHtml(STYLE)}
        </style>
      </head>
      <body>
        ${body}
      </body>
    </html>`.text;
}

/** A hidden CSRF field. */
function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${csrf}" />`;
}

/** A milliseconds figure for people: `850 ms`, `12.5 s`, `3.2 min`, `5.0 h`. */
function duration(ms: number | undefined): string {
  if (ms === undefined) return '—';
  if (!Number.isFinite(ms)) return 'never';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** A gate's figure, with the unit it is measured in. */
function figure(gate: keyof ReadinessGates, value: number | undefined): string {
  if (value === undefined) return '—';
  return gate === 'maxMirrorLagP95Ms' || gate === 'maxReconcileAgeMs' ? duration(value) : String(value);
}

/** One readiness gate: its figure, limit, evidence and state. */
function gateRows(readiness: Readiness): SafeHtml[] {
  const { figures, gates } = readiness;
  const lag = figures.mirrorLagMs;
  const rows: [keyof ReadinessGates, number | undefined, string][] = [
    ['maxMirrorLagP95Ms', lag.p95, `${lag.samples} applied mirrors sampled; p50 ${duration(lag.p50)}`],
    ['maxConflicts', figures.conflicts, `${lag.samples} applied mirrors sampled`],
    ['maxDivergence', figures.divergence, `${figures.comparisons} comparisons of the two copies`],
    ['maxDeadLetters', figures.deadLetters, 'open dead letters now'],
    ['maxPending', figures.pending, 'mirrors owed now'],
    [
      'maxUnbackfilledTypes',
      figures.unbackfilledTypes?.length,
      figures.unbackfilledTypes === undefined
        ? ''
        : `types without a backfill since the unit began mirroring: ${figures.unbackfilledTypes.join(', ') || 'none'}`,
    ],
    [
      'maxReconcileDisagreements',
      figures.reconcileDisagreements,
      'in the latest reconciliation of each type',
    ],
    ['maxReconcileAgeMs', figures.reconcileAgeMs, 'age of the oldest latest reconciliation'],
  ];
  return rows.map(([gate, value, evidence]) => {
    const limit = gates[gate];
    const failing = readiness.failing.some((f) => f.gate === gate);
    const unknown = readiness.unknown.find((u) => u.gate === gate);
    const state = !Number.isFinite(limit)
      ? html`<span class="muted">not checked</span>`
      : failing
        ? html`<span class="fail">fail</span>`
        : unknown !== undefined
          ? html`<span class="unknown">unknown (${unknown.samples} of ${unknown.needed} samples)</span>`
          : html`<span class="pass">pass</span>`;
    return html`<tr data-gate="${gate}">
      <td>${gate}</td>
      <td>${figure(gate, value)}</td>
      <td>${Number.isFinite(limit) ? figure(gate, limit) : '—'}</td>
      <td>${evidence}</td>
      <td>${state}</td>
    </tr>`;
  });
}

/** Whether a unit's mirrors are applied, or held by an operator's pause: since when, by whom, why. */
function pauseCell(at: number, unit: ConsoleUnit): SafeHtml {
  const { paused } = unit;
  if (paused === undefined) return html`<td data-paused="no">running</td>`;
  const who = paused.by === undefined ? '' : ` by ${paused.by}`;
  const why = paused.reason === undefined ? '' : `: ${paused.reason}`;
  return html`<td class="fail" data-paused="${paused.since}" title="since ${paused.since}">
    paused ${duration(Math.max(0, at - Date.parse(paused.since)))}${who}${why}
  </td>`;
}

/** Units × stages, each unit's backlog and its readiness gates with their evidence. */
function unitsPanel(view: ConsoleView): SafeHtml {
  const types = [...new Set(view.units.flatMap((unit) => Object.keys(unit.stages)))].sort();
  const rows = view.units.map((unit) => {
    const readiness = view.readiness.get(unit.unit);
    const verdict = readiness?.verdict ?? 'unknown';
    const css = verdict === 'ready' ? 'pass' : verdict === 'not-ready' ? 'fail' : 'unknown';
    return html`<tr data-unit="${unit.unit}">
      <th>${unit.unit}</th>
      ${types.map((type) => html`<td>${unit.stages[type] ?? '—'}</td>`)}
      <td class="${css}" data-verdict="${verdict}">${verdict}</td>
      <td>${unit.pending + unit.waiting}</td>
      <td>${unit.leased}</td>
      <td>${unit.dead}</td>
      <td>${duration(unit.oldestAgeMs)}</td>
      ${pauseCell(view.at, unit)}
    </tr>`;
  });
  const gates = view.units.map((unit) => {
    const readiness = view.readiness.get(unit.unit);
    if (readiness === undefined) return html``;
    return html`<details data-readiness="${unit.unit}" ${readiness.verdict === 'ready' ? '' : 'open'}>
      <summary>
        ${unit.unit}: ${readiness.verdict}, window ${readiness.window.from} to
        ${readiness.window.to}${readiness.plan.stale ? ' (plan stale)' : ''}
      </summary>
      <table>
        <tr>
          <th>gate</th>
          <th>figure</th>
          <th>limit</th>
          <th>evidence</th>
          <th>state</th>
        </tr>
        ${gateRows(readiness)}
      </table>
    </details>`;
  });
  return html`<section id="units">
    <h2>Units and stages</h2>
    <p class="muted">Plan revision ${view.plan.revision}, default stage ${view.plan.default}.</p>
    <table>
      <tr>
        <th>unit</th>
        ${types.map((type) => html`<th>${type}</th>`)}
        <th>readiness</th>
        <th>pending</th>
        <th>leased</th>
        <th>dead letters</th>
        <th>oldest owed</th>
        <th>mirroring</th>
      </tr>
      ${rows}
    </table>
    <h3>Readiness gates</h3>
    ${gates}
  </section>`;
}

/** The backlog and lag charts over the window. */
function chartsPanel(view: ConsoleView): SafeHtml {
  const backlog = new Map<string, { at: number; value: number }[]>();
  const dead: { at: number; value: number }[] = [];
  for (const sample of view.backlog) {
    const name = sample.unit ?? 'all units';
    const points = backlog.get(name) ?? [];
    points.push({ at: Date.parse(sample.at), value: sample.pending + sample.leased });
    backlog.set(name, points);
    if (sample.unit === undefined) dead.push({ at: Date.parse(sample.at), value: sample.dead });
  }
  const backlogSeries: ChartSeries[] = [...backlog].map(([name, points]) => ({ name, points }));
  if (dead.length > 0) backlogSeries.push({ name: 'dead letters (all units)', points: dead });
  const lag = new Map<string, { at: number; value: number }[]>();
  for (const point of view.lag) {
    const points = lag.get(point.unit) ?? [];
    points.push({ at: Date.parse(point.at), value: point.p95 });
    lag.set(point.unit, points);
  }
  const window = { from: view.from, to: view.at };
  return html`<section id="charts">
    <h2>Backlog and lag</h2>
    ${lineChart({
      id: 'backlog',
      title: 'Outbox backlog (owed mirrors)',
      unit: 'entries',
      ...window,
      series: backlogSeries,
    })}${lineChart({
      id: 'lag',
      title: 'Mirror lag, 95th percentile per step',
      unit: 'ms',
      ...window,
      series: [...lag].map(([name, points]) => ({ name, points })),
    })}
  </section>`;
}

/** An action button: a form posting `action` with its fields and the CSRF token. */
function actionForm(
  csrf: string,
  action: string,
  label: string,
  fields: Record<string, string | undefined>,
): SafeHtml {
  return html`<form class="inline" method="post" action="/actions">
    ${csrfField(csrf)}<input type="hidden" name="action" value="${action}" />${Object.entries(fields).map(
      ([name, value]) =>
        value === undefined ? '' : html`<input type="hidden" name="${name}" value="${value}" />`,
    )}<button type="submit" data-action="${action}">${label}</button>
  </form>`;
}

/** A button asking for one record's diff (POST: its ids stay out of URLs and logs). */
function diffForm(csrf: string, letter: ConsoleDeadLetter): SafeHtml {
  return html`<form class="inline" method="post" action="/diff">
    ${csrfField(csrf)}<input type="hidden" name="resourceType" value="${letter.resourceType}" /><input
      type="hidden"
      name="legacyId"
      value="${letter.legacyId}"
    /><button type="submit" data-action="diff">Diff</button>
  </form>`;
}

/** Dead letters grouped by reason, with retry and discard per group and per letter. */
function deadLettersPanel(view: ConsoleView, csrf: string, diffs: boolean): SafeHtml {
  const groups = new Map<string, ConsoleDeadLetter[]>();
  for (const letter of view.deadLetters) {
    const group = groups.get(letter.reason.name) ?? [];
    group.push(letter);
    groups.set(letter.reason.name, group);
  }
  const sections = [...groups].map(([reason, letters]) => {
    const list = (values: Iterable<string>) => [...new Set(values)].sort().join(', ');
    return html`<details open data-reason="${reason}">
      <summary>
        <strong>${reason}</strong>: ${letters.length} open (units ${list(letters.map((l) => l.unit))}; types
        ${list(letters.map((l) => l.resourceType))}; towards ${list(letters.map((l) => l.target))})
        ${actionForm(csrf, 'retry-reason', `Retry all ${letters.length}`, { reason })}
        ${actionForm(csrf, 'discard-reason', `Discard all ${letters.length}`, { reason })}
      </summary>
      <table>
        <tr>
          <th>id</th>
          <th>type</th>
          <th>legacy id</th>
          <th>unit</th>
          <th>towards</th>
          <th>status</th>
          <th>attempts</th>
          <th>failed at</th>
          <th>message</th>
          <th></th>
        </tr>
        ${letters.map(
          (letter) =>
            html`<tr data-dead-letter="${letter.id}">
              <td>${letter.id}</td>
              <td>${letter.resourceType}</td>
              <td>${letter.legacyId}</td>
              <td>${letter.unit}</td>
              <td>${letter.target}</td>
              <td>${letter.reason.status ?? ''}</td>
              <td>${letter.attempts}</td>
              <td>${letter.failedAt}</td>
              <td>${letter.reason.message}</td>
              <td>
                ${actionForm(csrf, 'retry', 'Retry', { id: letter.id })}
                ${actionForm(csrf, 'discard', 'Discard', { id: letter.id })}
                ${diffs ? diffForm(csrf, letter) : ''}
              </td>
            </tr>`,
        )}
      </table>
    </details>`;
  });
  return html`<section id="dead-letters">
    <h2>Dead letters</h2>
    ${
      groups.size === 0 ? html`<p>No open dead letters.</p>` : sections
    }${view.moreDeadLetters ? html`<p class="muted">Only the oldest ${view.deadLetters.length} are listed.</p>` : ''}
  </section>`;
}

/** A job's counts as `name n` pairs, path counts last. */
function counts(job: Job): string {
  return (
    Object.entries(job.counts)
      .sort(([a], [b]) => Number(a.startsWith('path:')) - Number(b.startsWith('path:')) || a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(', ') || 'none yet'
  );
}

/** The scope of a job: type, unit, direction. */
function scope(job: Job): string {
  return `${job.resourceType}${job.unit === undefined ? '' : ` of ${job.unit}`}, ${job.direction}`;
}

/** A form asking for any record's diff by type and legacy id. */
function compareForm(csrf: string): SafeHtml {
  return html`<form method="post" action="/diff" data-compare>
    ${csrfField(csrf)}<label>Compare one record: type <input name="resourceType" required size="14" /></label>
    <label>legacy id <input name="legacyId" required size="20" /></label>
    <button type="submit" data-action="compare">Compare</button>
  </form>`;
}

/** The latest reconciliation of each scope: its classes and the ids sampled per class. */
function reconcilePanel(view: ConsoleView, csrf: string, diffs: boolean): SafeHtml {
  const reports = view.reconciles.map(
    (job) =>
      html`<tr data-job="${job.id}">
        <td>${job.id}</td>
        <td>${scope(job)}</td>
        <td>${job.state}</td>
        <td>${job.finishedAt ?? `running since ${job.createdAt}`}</td>
        <td>${counts(job)}</td>
        <td>
          ${Object.entries(job.samples)
            .filter(([name, ids]) => name !== 'agree' && ids.length > 0)
            .map(([name, ids]) => `${name}: ${ids.join(', ')}`)
            .join('; ')}
        </td>
      </tr>`,
  );
  return html`<section id="reconcile">
    <h2>Latest reconciliation</h2>
    ${
      reports.length === 0
        ? html`<p>No reconciliation has run.</p>`
        : html`<table>
            <tr>
              <th>job</th>
              <th>scope</th>
              <th>state</th>
              <th>finished</th>
              <th>classes</th>
              <th>ids sampled (disagreements)</th>
            </tr>
            ${reports}
          </table>`
    }
    ${diffs ? compareForm(csrf) : ''}
  </section>`;
}

/** Backfill jobs, newest first, with their progress. */
function backfillPanel(view: ConsoleView): SafeHtml {
  const rows = view.backfills.map((job) => {
    const done = job.state === 'done';
    const progress =
      done || job.scanComplete
        ? html`<progress
              max="${Math.max(1, job.pages)}"
              value="${done ? Math.max(1, job.pages) : job.pagesDone}"
            ></progress>
            ${job.pagesDone} of ${job.pages} pages`
        : html`<progress></progress> ${job.pagesDone} pages done, scan still going`;
    return html`<tr data-job="${job.id}">
      <td>${job.id}</td>
      <td>${scope(job)}</td>
      <td>${job.state}${job.reason === undefined ? '' : ` (${job.reason})`}</td>
      <td>${progress}</td>
      <td>${counts(job)}</td>
      <td>${job.updatedAt}</td>
    </tr>`;
  });
  return html`<section id="backfills">
    <h2>Backfill jobs</h2>
    ${
      rows.length === 0
        ? html`<p>No backfill has run.</p>`
        : html`<table>
            <tr>
              <th>job</th>
              <th>scope</th>
              <th>state</th>
              <th>progress</th>
              <th>counts</th>
              <th>updated</th>
            </tr>
            ${rows}
          </table>`
    }
  </section>`;
}

/**
 * The dashboard: units and readiness, charts, dead letters, the latest reconciliation, backfills.
 *
 * @param view - What to show.
 * @param session - The session's CSRF token, a message from its last action, and whether
 *   records can be diffed.
 * @returns The HTML document.
 * @example
 * ```ts
 * response.end(dashboardPage(await readConsoleView(operator, store, options), { csrf, flash }));
 * ```
 */
export function dashboardPage(
  view: ConsoleView,
  session: {
    readonly csrf: string;
    readonly flash?: string | undefined;
    readonly diffs?: boolean | undefined;
  },
): string {
  return page(
    'dualwrite console',
    html`<h1>dualwrite console</h1>
      <p class="muted">Read at ${new Date(view.at).toISOString()}; refreshes every 30 s.</p>
      ${
        session.flash === undefined ? '' : html`<p class="flash" role="status">${session.flash}</p>`
      }${unitsPanel(view)}${chartsPanel(view)}${deadLettersPanel(view, session.csrf, session.diffs === true)}${reconcilePanel(view, session.csrf, session.diffs === true)}${backfillPanel(view)}`,
    true,
  );
}

/**
 * The confirmation of a destructive action: what it will do, and a form that does it (with a
 * note field for discards).
 *
 * @param action - The action's fields as posted.
 * @param what - What it will do, for people.
 * @param csrf - The session's CSRF token.
 * @returns The HTML document.
 * @example
 * ```ts
 * response.end(confirmPage({ action: 'retry', id: '7' }, 'Retry dead letter 7?', csrf));
 * ```
 */
export function confirmPage(action: Readonly<Record<string, string>>, what: string, csrf: string): string {
  const discard = action.action?.startsWith('discard') === true;
  return page(
    'Confirm',
    html`<h1>Confirm</h1>
      <form method="post" action="/actions">
        ${csrfField(csrf)}${Object.entries(action)
          .filter(([name]) => name !== 'csrf' && name !== 'confirm' && name !== 'note')
          .map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}
        <p>${what}</p>
        ${
          discard
            ? html`<p>
                <label
                  >Why (kept with the letter; no patient data):
                  <input name="note" required maxlength="500" size="60"
                /></label>
              </p>`
            : ''
        }<input type="hidden" name="confirm" value="yes" /><button type="submit" data-confirm="yes">
          Confirm
        </button>
        <a href="/">Cancel</a>
      </form>`,
  );
}

/**
 * The sign-in page: a form for the access token.
 *
 * @param csrf - The session's CSRF token.
 * @param refused - Whether a token was just refused.
 * @returns The HTML document.
 * @example
 * ```ts
 * response.end(loginPage(csrf, false));
 * ```
 */
export function loginPage(csrf: string, refused: boolean): string {
  return page(
    'dualwrite console: sign in',
    html`<h1>dualwrite console</h1>
      ${refused ? html`<p class="flash" role="alert">That token was refused.</p>` : ''}
      <p>This console needs its access token (printed by <code>dualwrite console</code> when it started).</p>
      <form method="post" action="/login">
        ${csrfField(csrf)}<label
          >Access token <input type="password" name="token" autocomplete="off" required
        /></label>
        <button type="submit">Sign in</button>
      </form>`,
  );
}

/**
 * A page with one message (a refusal, an error).
 *
 * @param title - The title.
 * @param message - The message.
 * @returns The HTML document.
 * @example
 * ```ts
 * response.end(messagePage('Refused', 'The form had expired; reload the page.'));
 * ```
 */
export function messagePage(title: string, message: string): string {
  return page(
    title,
    html`<h1>${title}</h1>
      <p>${message}</p>
      <p><a href="/">Back to the console</a></p>`,
  );
}

/**
 * The page for a request the console refused as bad input: the error's name and the field at
 * fault, also as `data-error` and `data-field` for scripts.
 *
 * @param error - The error (its message names the field, never a value).
 * @returns The HTML document.
 * @example
 * ```ts
 * response.end(inputErrorPage(new InvalidInputError('resourceType', 'has no mapping')));
 * ```
 */
export function inputErrorPage(error: {
  readonly name: string;
  readonly field: string;
  readonly message: string;
}): string {
  return page(
    'Bad request',
    html`<h1>Bad request</h1>
      <p role="alert" data-error="${error.name}" data-field="${error.field}">
        ${error.name}: ${error.message}
      </p>
      <p><a href="/">Back to the console</a></p>`,
  );
}

/** Which systems hold the record, said in words (and as `data-presence`). */
function presenceLine(diff: RecordDiff): SafeHtml {
  const text = {
    both: 'Both systems hold this record.',
    'legacy-only': 'The record is only in the legacy system: Medplum has no copy of it.',
    'medplum-only': 'The record is only in Medplum: the legacy system has no row for it.',
    neither: 'The record exists on neither side: no legacy row and no Medplum copy.',
  }[diff.presence];
  return html`<p data-presence="${diff.presence}">${text}</p>`;
}

/** A value of a diff, as compact JSON. */
function shown(value: unknown): string {
  return value === undefined ? '' : JSON.stringify(value);
}

/**
 * One record's diff: the paths where its copies differ and how; the values only when the
 * configuration reveals them.
 *
 * @param diff - The differences.
 * @param revealed - Whether values are shown (`revealValues`).
 * @returns The HTML document.
 * @example
 * ```ts
 * response.end(diffPage(await recordDiff(records, 'Patient', 'p-1'), false));
 * ```
 */
export function diffPage(diff: RecordDiff, revealed: boolean): string {
  const rows = diff.differences.map(
    (d) =>
      html`<tr data-path="${d.path}">
        <td>${d.path === '' ? '(the whole record)' : d.path}</td>
        <td>${d.kind}</td>
        ${
          revealed
            ? html`<td>${shown(d.before)}</td>
                <td>${shown(d.after)}</td>`
            : ''
        }
      </tr>`,
  );
  return page(
    `Diff of ${diff.resourceType} ${diff.legacyId}`,
    html`<h1>
        ${diff.resourceType}
        ${diff.legacyId}${diff.medplumId === undefined ? ', no Medplum copy' : html` / Medplum ${diff.medplumId}`}
      </h1>
      ${
        revealed
          ? html`<p class="flash">Values are shown (revealValues is on). This request was audited.</p>`
          : html`<p class="muted">Paths only: values are hidden (the console's revealValues is off).</p>`
      }${presenceLine(diff)}${
        rows.length === 0
          ? diff.presence === 'both'
            ? html`<p>The two copies agree.</p>`
            : ''
          : html`<table>
              <tr>
                <th>path</th>
                <th>difference</th>
                ${
                  revealed
                    ? html`<th>legacy</th>
                        <th>Medplum</th>`
                    : ''
                }
              </tr>
              ${rows}
            </table>`
      }
      <p><a href="/">Back to the console</a></p>`,
  );
}
