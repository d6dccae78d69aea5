// Formatting shared by the terminal view, the report and the HTML page. Everything a dump holds may be
// user-controlled (URLs, headers, locals, SQL), so text meant for a terminal goes through clean(): an escape
// sequence in a URL must not be able to move the cursor, retitle the window or hide the lines around it.

// C0 controls but tab, DEL, C1 controls, and the bidi overrides that can reorder what a reader sees.
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** `s` as one safe line: controls shown as `\xNN` / `\uNNNN`, cut at `max` characters with an ellipsis. */
export function clean(s: unknown, max = 300): string {
  const text = (typeof s === 'string' ? s : String(s)).replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return text.length > max ? text.slice(0, Math.max(0, max - 1)) + '…' : text;
}

/** Durations are written one way everywhere (src/util/duration.ts). */
export { humanDuration as duration } from '../util/duration';

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function percent(part: number, whole: number): string {
  if (!(whole > 0)) return '-';
  const p = (100 * part) / whole;
  return p > 0 && p < 1 ? '<1%' : `${Math.round(p)}%`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local wall-clock time, `2026-11-28 16:12:52`: what an operator compares with their own logs. */
export function localTime(t: string | number): string {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return clean(String(t), 40);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Pads to a width counted in characters, ignoring ANSI color codes. */
export function padEndVisible(s: string, width: number): string {
  const visible = s.replace(/\x1b\[[0-9;]*m/g, '').length;
  return visible >= width ? s : s + ' '.repeat(width - visible);
}

/** Rows of cells as aligned columns (two spaces apart), trailing blanks trimmed. */
export function columns(rows: string[][], rightAligned: ReadonlySet<number> = new Set()): string {
  if (rows.length === 0) return '';
  const len = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const n = Math.max(...rows.map((r) => r.length));
  const widths = Array.from({ length: n }, (_, i) => Math.max(...rows.map((r) => len(r[i] ?? ''))));
  return rows.map((r) => r.map((c, i) => {
    const gap = ' '.repeat(Math.max(0, widths[i]! - len(c)));
    return rightAligned.has(i) ? gap + c : c + gap;
  }).join('  ').trimEnd()).join('\n') + '\n';
}

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  green(s: string): string;
  cyan(s: string): string;
  magenta(s: string): string;
}

const sgr = (open: number, close: number) => (s: string) => `\x1b[${open}m${s}\x1b[${close}m`;
const plain = (s: string) => s;

export function style(color: boolean): Style {
  if (!color) return { bold: plain, dim: plain, red: plain, yellow: plain, green: plain, cyan: plain, magenta: plain };
  return { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), yellow: sgr(33, 39), green: sgr(32, 39), cyan: sgr(36, 39), magenta: sgr(35, 39) };
}

/** Colors on a TTY, or when FORCE_COLOR asks for them; never when NO_COLOR is set (no-color.org). */
export function wantColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return stream.isTTY === true;
}

/**
 * A local's value as the views show it: its description, and its size when the description does not say it
 * already ("Array(10)" and a cut string's "… (N chars)" do; an object's own properties do not).
 */
export function valueWithSize(v: { type: string; value: string; size?: number }): string {
  if (v.size === undefined || v.value.includes(`(${v.size})`) || v.value.includes(`(${v.size} chars)`)) return v.value;
  return `${v.value} (${v.size} ${v.type === 'string' ? 'chars' : v.type === 'map' || v.type === 'set' ? 'entries' : v.type === 'object' || v.type === 'error' ? 'properties' : 'elements'})`;
}
