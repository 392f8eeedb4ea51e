import { html, type SafeHtml } from './html-text.ts';

/*
 * Line charts drawn on the server as inline SVG: no script, no library, nothing to build. A
 * chart of a day at one point a minute is a few polylines of 1,440 points, a few tens of KB.
 */

/**
 * One line of a chart.
 *
 * @example
 * ```ts
 * const series: ChartSeries = { name: 'north', points: [{ at: Date.now(), value: 3 }] };
 * ```
 */
export interface ChartSeries {
  /** The legend's label. */
  readonly name: string;
  /** Instants (milliseconds since the epoch) and values, in time order. */
  readonly points: readonly { readonly at: number; readonly value: number }[];
}

/**
 * What {@link lineChart} draws.
 *
 * @example
 * ```ts
 * const chart: LineChart = { id: 'backlog', title: 'Outbox backlog', unit: 'entries', from, to, series };
 * ```
 */
export interface LineChart {
  /** Names the chart in the page (`data-chart`). */
  readonly id: string;
  /** Its accessible title. */
  readonly title: string;
  /** What the values count, after the largest tick (`entries`, `ms`). */
  readonly unit: string;
  /** The time axis's start and end (milliseconds since the epoch). */
  readonly from: number;
  readonly to: number;
  readonly series: readonly ChartSeries[];
}

// Okabe–Ito colours: told apart with the common colour-vision deficiencies.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const WIDTH = 720;
const HEIGHT = 220;
const LEFT = 56;
const RIGHT = 12;
const TOP = 12;
const BOTTOM = 28;

/** A round number at or above `value`, for the top of the axis (1, 2, 5 × 10^n). */
function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

/** `HH:MM` in UTC, or `MM-DD HH:MM` when the axis spans more than a day. */
function timeLabel(at: number, span: number): string {
  const iso = new Date(at).toISOString();
  return span > 86_400_000 ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/**
 * A line chart as inline SVG: a time axis, a value axis from zero, a polyline per series (a
 * dot where a series has a single point) and a legend. Without points it says so.
 *
 * @param chart - What to draw.
 * @returns The SVG element.
 * @example
 * ```ts
 * const svg = lineChart({ id: 'lag', title: 'Mirror lag p95', unit: 'ms', from, to, series });
 * ```
 */
export function lineChart(chart: LineChart): SafeHtml {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const span = Math.max(1, chart.to - chart.from);
  const values = chart.series.flatMap((series) => series.points.map((point) => point.value));
  const top = niceCeiling(Math.max(0, ...values));
  const x = (at: number) => (LEFT + ((at - chart.from) / span) * plotWidth).toFixed(1);
  const y = (value: number) => (TOP + plotHeight - (value / top) * plotHeight).toFixed(1);
  const ticks = [0, top / 2, top];
  const grid = ticks.map(
    (tick) =>
      html`<line
          class="grid"
          x1="${LEFT}"
          x2="${WIDTH - RIGHT}"
          y1="${y(tick)}"
          y2="${y(tick)}"
          stroke="#ddd"
        /><text x="${LEFT - 6}" y="${Number(y(tick)) + 4}" text-anchor="end" font-size="11"
          >${formatTick(tick)}${tick === top ? ` ${chart.unit}` : ''}</text
        >`,
  );
  const times = [chart.from, chart.from + span / 2, chart.to].map(
    (at, i) =>
      html`<text x="${x(at)}" y="${HEIGHT - 8}" text-anchor="${['start', 'middle', 'end'][i]}" font-size="11"
        >${timeLabel(at, span)}</text
      >`,
  );
  const lines = chart.series.map((series, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000';
    const points = series.points.map((point) => `${x(point.at)},${y(point.value)}`).join(' ');
    const only = series.points.length === 1 ? series.points[0] : undefined;
    return html`<polyline
        data-series="${series.name}"
        data-points="${series.points.length}"
        fill="none"
        stroke="${colour}"
        stroke-width="1.5"
        points="${points}"
      />${
        only === undefined
          ? ''
          : html`<circle cx="${x(only.at)}" cy="${y(only.value)}" r="3" fill="${colour}" />`
      }`;
  });
  const legend = chart.series.map((series, i) => {
    const colour = COLOURS[i % COLOURS.length] ?? '#000';
    return html`<span class="legend"
      ><span class="swatch" style="background:${colour}"></span>${series.name}</span
    >`;
  });
  const empty =
    values.length === 0
      ? html`<text
          x="${LEFT + plotWidth / 2}"
          y="${TOP + plotHeight / 2}"
          text-anchor="middle"
          font-size="13"
          fill="#666"
          >no samples in this window yet</text
        >`
      : '';
  return html`<figure class="chart">
    <svg
      data-chart="${chart.id}"
      role="img"
      aria-label="${chart.title}"
      viewBox="0 0 ${WIDTH} ${HEIGHT}"
      width="${WIDTH}"
      height="${HEIGHT}"
      xmlns="http://www.w3.org/2000/svg"
    >
      <title>${chart.title}</title>
      ${grid}
      <line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${TOP + plotHeight}" stroke="#999" />
      ${times}${lines}${empty}
    </svg>
    <figcaption>${chart.title} ${legend}</figcaption>
  </figure>`;
}

/** A tick's value: whole numbers as they are, fractions to two significant digits. */
function formatTick(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(2);
}
