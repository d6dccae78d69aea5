// One line of a daemon's log file, as `superv logs` shows it: which source wrote it (`master`, `w3`, `hook`),
// whether `--worker N` keeps it, and how it looks on a terminal. Pure: the file reading is log-tail.ts.
// The master writes one JSON record per line (master/logger.ts); a worker's output line is a record with
// `event: "output"` and `source: "worker 3 stdout"` (master/output.ts). Anything else in the file (a Node
// warning, superv's own crash) is shown as the master's, as it is: it reached the file through the master.

import { clean } from '../reader/format';

export interface LogRecord {
  /** `master`, `w3`, `hook`: the prefix shown. */
  source: string;
  /** The worker that printed it, or that a master record is about (`worker` field). */
  worker: number | undefined;
  /** stderr output is shown apart (red on a terminal). */
  stderr: boolean;
  time: number | undefined;
  /** pino's numeric level; undefined for a line that is not a record. */
  level: number | undefined;
  msg: string;
  /** The line as it is in the file. */
  raw: string;
}

const WORKER_SOURCE = /^worker (\d+) (stdout|stderr)$/;
const HOOK_SOURCE = /^hook .* (stdout|stderr)$/;

export function parseRecord(raw: string): LogRecord {
  let rec: Record<string, unknown> | undefined;
  if (raw.startsWith('{')) {
    try {
      const v: unknown = JSON.parse(raw);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) rec = v as Record<string, unknown>;
    } catch { /* not a record */ }
  }
  if (!rec) return { source: 'master', worker: undefined, stderr: false, time: undefined, level: undefined, msg: raw, raw };
  const time = typeof rec.time === 'number' ? rec.time : undefined;
  const level = typeof rec.level === 'number' ? rec.level : undefined;
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  const source = typeof rec.source === 'string' ? rec.source : '';
  if (rec.event === 'output') {
    // The recorder prefixes the message with `[source] `: the prefix column says it already.
    const text = msg.startsWith(`[${source}] `) ? msg.slice(source.length + 3) : msg;
    const w = WORKER_SOURCE.exec(source);
    if (w) return { source: `w${w[1]}`, worker: Number(w[1]), stderr: w[2] === 'stderr', time, level, msg: text, raw };
    const h = HOOK_SOURCE.exec(source);
    if (h) return { source: 'hook', worker: undefined, stderr: h[1] === 'stderr', time, level, msg: text, raw };
  }
  const worker = typeof rec.worker === 'number' ? rec.worker : undefined;
  return { source: 'master', worker, stderr: false, time, level, msg, raw };
}

/** `--worker N`: that worker's output, and the master's records about it (stuck, killed, exited, spawned). */
export function keeps(rec: LogRecord, worker: number | undefined): boolean {
  return worker === undefined || rec.worker === worker;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const COLORS = { dim: '\x1b[2m', red: '\x1b[31m', yellow: '\x1b[33m', cyan: '\x1b[36m', green: '\x1b[32m', reset: '\x1b[0m' };
/** The width of the source column: `master`, `w12`, `hook` line up. */
const SOURCE_WIDTH = 6;

function clock(t: number | undefined): string {
  if (t === undefined) return ' '.repeat(12);
  const d = new Date(t);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/**
 * `13:02:11.482 w3     | listening on 3000`, `13:02:12.001 master | WARN worker 3 (pid 812) is stuck …`.
 * A line an app printed may hold escape sequences: they are shown, never run (clean()).
 */
export function formatRecord(rec: LogRecord, color: boolean): string {
  const c = (code: string, s: string) => (color ? code + s + COLORS.reset : s);
  const src = (rec.stderr ? `${rec.source}!` : rec.source).padEnd(SOURCE_WIDTH);
  const srcShown = rec.stderr ? c(COLORS.red, src) : rec.source === 'master' ? c(COLORS.cyan, src) : c(COLORS.green, src);
  let level = '';
  if (rec.source === 'master' && rec.level !== undefined) {
    const name = LEVELS[rec.level] ?? String(rec.level);
    level = (rec.level >= 50 ? c(COLORS.red, name) : rec.level >= 40 ? c(COLORS.yellow, name) : name) + ' ';
  }
  return `${c(COLORS.dim, clock(rec.time))} ${srcShown} | ${level}${clean(rec.msg, 20_000)}`;
}
