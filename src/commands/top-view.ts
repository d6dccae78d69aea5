// What `superv top` draws, as lines of at most `width` columns: a header, one row per worker (pid, state, CPU,
// RSS, requests/s, in flight, event-loop delay, the oldest request's route and age), then the last dumps. Pure:
// the terminal handling is top.ts. Designed for 80 columns; a wider terminal gets SERVED and UPTIME too.

import { normalizeRoute } from '../dump/route';
import type { MasterStatus, WorkerStatus } from '../master/status';
import { clean } from '../reader/format';
import { humanDuration } from '../util/duration';

/** Where the extra columns start to fit. */
const WIDE = 100;
/** How many of the newest dumps are listed. */
export const LAST_DUMPS = 5;

export interface TopFrame {
  status: MasterStatus;
  /** Requests per second per worker pid, from the served counters of two polls; absent on the first. */
  rates: ReadonlyMap<number, number>;
  /** The newest dump file names of this supervisor, newest first. */
  dumps: readonly string[];
  /** Why the last poll failed (the master stopped, is busy): shown above the last known view. */
  problem?: string;
  now: number;
}

/** Requests per second from two polls' served counters, per pid (a worker new since the last poll has none). */
export function requestRates(prev: ReadonlyArray<Pick<WorkerStatus, 'pid' | 'served'>>, next: ReadonlyArray<Pick<WorkerStatus, 'pid' | 'served'>>, seconds: number): Map<number, number> {
  const before = new Map(prev.map((w) => [w.pid, w.served]));
  const out = new Map<number, number>();
  if (!(seconds > 0)) return out;
  for (const w of next) {
    const b = before.get(w.pid);
    if (b !== undefined && w.served >= b) out.set(w.pid, (w.served - b) / seconds);
  }
  return out;
}

const mib = (b: number | undefined): string => (b === undefined ? '-' : `${Math.round(b / 2 ** 20)}M`);
const age = (ms: number): string => humanDuration(ms, true);

function fit(line: string, width: number): string {
  return line.length > width ? line.slice(0, Math.max(0, width - 1)) + '…' : line;
}

function rate(r: number | undefined): string {
  if (r === undefined) return '-';
  return r >= 100 ? String(Math.round(r)) : r.toFixed(1);
}

/** `2026-11-28T15-30-01.123Z-api-w3-812-timeout.json` → `15:30:01  timeout  w3 pid 812`. */
export function dumpLine(file: string): string {
  const m = /^\d{4}-\d\d-\d\dT(\d\d)-(\d\d)-(\d\d)\.\d{3}Z-.+-w(\d+)-(\d+)-([a-z]+)\.json$/.exec(file);
  if (!m) return clean(file, 200);
  return `${m[1]}:${m[2]}:${m[3]}Z  ${m[6]!.padEnd(8)} w${m[4]} pid ${m[5]}`;
}

export function renderTop(f: TopFrame, width: number, height: number): string[] {
  const s = f.status;
  const wide = width >= WIDE;
  const clock = new Date(f.now).toTimeString().slice(0, 8);
  const head = `superv top  ${clean(s.name, 40)}  master ${s.pid}  up ${age(s.uptimeMs)}  ${s.workers.length}/${s.workersWanted} workers  ${s.restarts} restart(s)`;
  const lines = [head.length + clock.length + 1 < width ? head + ' '.repeat(width - head.length - clock.length) + clock : head];
  lines.push(f.problem ? `! ${clean(f.problem, 200)}` : 'q or Ctrl-C quits; refreshed every second');
  const cols = (w: string, pid: string, state: string, cpu: string, rss: string, rps: string, infl: string, loop: string, served: string, up: string, oldest: string) =>
    `${w.padStart(3)} ${pid.padStart(7)} ${state.padEnd(8)} ${cpu.padStart(5)} ${rss.padStart(5)} ${rps.padStart(6)} ${infl.padStart(5)} ${loop.padStart(6)}` +
    (wide ? ` ${served.padStart(8)} ${up.padStart(7)}` : '') + `  ${oldest}`;
  lines.push('', cols('W', 'PID', 'STATE', 'CPU%', 'RSS', 'REQ/S', 'INFL', 'LOOP', 'SERVED', 'UPTIME', 'OLDEST REQUEST'));
  for (const w of s.workers) {
    const oldest = w.oldest ? `${clean(w.oldest.method, 10)} ${clean(normalizeRoute(w.oldest.url), 200)} ${age(w.oldest.ageMs)}` : '-';
    lines.push(cols(String(w.id), String(w.pid), w.state, w.cpuPercent === undefined ? '-' : w.cpuPercent.toFixed(1), mib(w.rss),
      rate(f.rates.get(w.pid)), String(w.inflight), w.loopDelayP99Ms === undefined ? '-' : `${w.loopDelayP99Ms}ms`,
      String(w.served), age(w.uptimeMs), oldest));
  }
  if (s.workers.length === 0) lines.push('   (no workers)');
  for (const r of s.poisonRoutes ?? []) lines.push(`! poison route ${clean(r.route, 100)} (${r.state}), ${r.kills} kill(s)`);
  lines.push('', `LAST DUMPS  ${clean(s.dumpDir, 200)}`);
  if (f.dumps.length === 0) lines.push('   (none)');
  for (const d of f.dumps) lines.push(`   ${dumpLine(d)}`);
  // A short terminal keeps the top of the view: the header and the workers matter most.
  return lines.slice(0, Math.max(1, height)).map((l) => fit(l, width));
}
