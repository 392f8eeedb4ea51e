/*
 * HTML built as text on the server, every interpolated value escaped unless it is HTML built the
 * same way: the `html` tag returns a `SafeHtml`, and only a `SafeHtml` passes through unescaped.
 */

/**
 * A piece of HTML whose every value was escaped.
 *
 * @example
 * ```ts
 * const cell: SafeHtml = html`<td>${unit}</td>`;
 * ```
 */
export class SafeHtml {
  /** The markup. */
  readonly text: string;
  /** @param text - Markup already escaped. */
  constructor(text: string) {
    this.text = text;
  }
  /** @returns The markup. */
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes text for an HTML element or a quoted attribute.
 *
 * @param text - Any text.
 * @returns The escaped text.
 * @example
 * ```ts
 * escapeHtml('<b>'); // '&lt;b&gt;'
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** One interpolated value as markup: `SafeHtml` as is, arrays joined, nothing for null-ish. */
function part(value: unknown): string {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(part).join('');
  if (value === undefined || value === null || value === false) return '';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return escapeHtml(String(value));
  throw new TypeError(`html: cannot interpolate ${typeof value}`);
}

/**
 * A template tag for HTML: interpolated values are escaped, `SafeHtml` and arrays of it kept.
 *
 * @param strings - The template's markup.
 * @param values - The interpolated values.
 * @returns The markup.
 * @example
 * ```ts
 * html`<p>${'<script>'}</p>`.text; // '<p>&lt;script&gt;</p>'
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: readonly unknown[]): SafeHtml {
  let text = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) text += part(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(text);
}
