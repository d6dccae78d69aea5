// The control commands: `superv ls | status | reload | scale | stop | dump`, each one request over the
// named supervisor's control socket.

import { resolve } from 'node:path';
import { request, socketNames } from '../control/client';
import { lockHolder } from '../control/lock';
import { defaultRunDir } from '../control/paths';
import { SupervError } from '../errors';
import type { MasterStatus, WorkerStatus } from '../master/status';
import { humanDuration } from '../util/duration';
import { MAX_DURATION_MS, MAX_WORKERS } from '../config/settings';
import { parseDuration } from '../config/units';

/** `timeout`: how long a command waits for the master's reply (--timeout); undefined = the command's own bound. */
interface Parsed { positional: string[]; json: boolean; runDir: string; timeout: number | undefined; wait: boolean }

function parse(argv: string[]): Parsed {
  const out: Parsed = { positional: [], json: false, runDir: resolve(defaultRunDir()), timeout: undefined, wait: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') out.json = true;
    else if (a === '--no-wait') out.wait = false;
    else if (a === '--timeout' || a.startsWith('--timeout=')) {
      const v = a === '--timeout' ? argv[++i] : a.slice('--timeout='.length);
      const ms = v === undefined ? undefined : parseDuration(v);
      if (ms === undefined || ms < 100 || ms > MAX_DURATION_MS) throw new SupervError('SUPERV_ERR_BAD_VALUE', '--timeout', `${JSON.stringify(v ?? '')}: expected a duration such as 5s`);
      out.timeout = ms;
    }
    else if (a === '--run-dir') {
      const v = argv[++i];
      if (!v) throw new SupervError('SUPERV_ERR_BAD_VALUE', '--run-dir', 'it needs a value');
      out.runDir = resolve(v);
    } else if (a.startsWith('--run-dir=')) out.runDir = resolve(a.slice('--run-dir='.length));
    else if (a.startsWith('-') && !/^[+-]\d+$/.test(a)) throw new SupervError('SUPERV_ERR_USAGE', `unknown option ${a}`);
    else out.positional.push(a);
  }
  return out;
}

/** How long `ls` and a name-less command wait for each master's status. */
const LS_TIMEOUT_MS = 3000;

/** The named supervisor, or the only one running (answering or not) when no name is given. */
export async function pickName(p: Pick<Parsed, 'runDir'>, given: string | undefined): Promise<string> {
  if (given) return given;
  const live: string[] = [];
  for (const n of socketNames(p.runDir)) {
    if (await request(p.runDir, n, { cmd: 'status' }, LS_TIMEOUT_MS).then(() => true, () => lockHolder(p.runDir, n) !== undefined)) live.push(n);
  }
  if (live.length === 1) return live[0]!;
  if (live.length === 0) throw new SupervError('SUPERV_ERR_NOT_RUNNING', `(any, in ${p.runDir})`);
  throw new SupervError('SUPERV_ERR_USAGE', `several supervisors are running (${live.join(', ')}): name one`);
}

const ms = (n: number): string => humanDuration(n, true);

/** What `superv stop` gives the master beyond the workers' graceful timeout to exit itself. */
const STOP_GRACE_MS = 10_000;

/** Waits until no master holds NAME's lock (it exited, whichever way); false after `waitMs`. */
async function exited(runDir: string, name: string, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (lockHolder(runDir, name) !== undefined) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** The workers' count bounds: the settings table's `workers` (1..MAX_WORKERS). */
export function scaleProblem(to: string): string | undefined {
  if (/^[+-]/.test(to)) return undefined; // relative: the master checks the result against its count
  const n = Number(to);
  if (n === 0) return '0 workers: a supervisor keeps at least 1 (to stop them all: superv stop NAME)';
  if (n > MAX_WORKERS) return `${n} workers: at most ${MAX_WORKERS}`;
  return undefined;
}

function mib(b: number | undefined): string {
  return b === undefined ? '-' : `${(b / 2 ** 20).toFixed(0)}M`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export function renderStatus(s: MasterStatus): string {
  const head = `${s.name}: master pid ${s.pid}, up ${ms(s.uptimeMs)}, ${s.phase}, ${s.workers.length}/${s.workersWanted} workers, ` +
    `${s.restarts} restart(s)\n  app ${s.app}\n  dumps ${s.dumpDir}${s.configFile ? `\n  config ${s.configFile}` : ''}${s.metrics ? `\n  metrics ${s.metrics}` : ''}${s.logFile ? `\n  log ${s.logFile}` : ''}\n\n`;
  // Upgraded connections (WebSocket) are shown beside requests, only where there are some.
  const ws = s.workers.some((w) => (w.upgraded ?? 0) > 0);
  const rows = [['ID', 'INDEX', 'PID', 'STATE', 'UPTIME', 'SERVED', ws ? 'INFLIGHT+WS' : 'INFLIGHT', 'OLDEST', 'LOOP p99', 'CPU', 'RSS', 'LAST DUMP']];
  for (const w of s.workers as WorkerStatus[]) {
    // A stalled worker's requests come from its watchdog (marked `*`), or are the last heartbeat's, as old as shown.
    const inflight = (ws ? `${w.inflight}+${w.upgraded ?? 0}` : String(w.inflight)) +
      (w.inflightFrom === 'watchdog' ? '*' : w.dataAgeMs !== undefined ? ` (${ms(w.dataAgeMs)} ago)` : '');
    rows.push([String(w.id), `${w.index ?? '-'}${w.kind === 'background' ? ' bg' : ''}`, String(w.pid), w.state, ms(w.uptimeMs),
      w.kind === 'background' ? '-' : String(w.served), inflight,
      w.oldest ? `${ms(w.oldest.ageMs)} ${w.oldest.method} ${w.oldest.url}`.slice(0, 48) : '-',
      w.loopDelayP99Ms === undefined ? '-' : `${w.loopDelayP99Ms}ms`,
      w.cpuPercent === undefined ? '-' : `${w.cpuPercent}%`, mib(w.rss), w.lastDump ? w.lastDump.split('/').pop()! : '-']);
  }
  const stalled = s.workers.some((w) => w.inflightFrom === 'watchdog')
    ? '\n* stalled: in flight as its watchdog reads them now (its heartbeats stopped)\n' : '';
  return head + table(rows) + stalled + poisonLines(s);
}

/** Poison and quarantined routes, loud: they are why workers keep dying. */
function poisonLines(s: MasterStatus): string {
  return (s.poisonRoutes ?? []).map((r) => {
    const what = r.state === 'quarantined' ? `QUARANTINED for ${ms(Math.max(0, (r.until ?? 0) - Date.now()))} more (503 + Retry-After)`
      : r.state === 'trial' ? 'quarantine over: one request per worker let through' : 'POISON (quarantine off)';
    return `\n! route ${r.route}: ${what}; ${r.kills} kill(s) in the window, ${r.quarantinedRequests} request(s) answered 503; dumps: ${r.dumps.join(', ')}`;
  }).join('') + ((s.poisonRoutes ?? []).length ? '\n' : '');
}

function poisonFlag(s: MasterStatus): string {
  return (s.poisonRoutes ?? []).map((r) => `${r.route} (${r.state})`).join(', ') || '-';
}

export async function runControlCommand(cmd: string, argv: string[]): Promise<number> {
  const p = parse(argv);
  const out = (v: unknown, human: string) => process.stdout.write(p.json ? JSON.stringify(v, null, 2) + '\n' : human);
  switch (cmd) {
    case 'ls': {
      // A master that holds its lock but does not answer in time (busy, SIGSTOPped, socket deleted) is listed
      // as such, with its pid: it is running, and a second one with its name would be refused.
      const rows = [['NAME', 'PID', 'STATE', 'WORKERS', 'UPTIME', 'APP', 'POISON ROUTES']];
      const all: Array<(MasterStatus & { state: 'running' }) | { name: string; pid: number; state: 'not answering'; error: string }> = [];
      for (const n of socketNames(p.runDir)) {
        const r = await request(p.runDir, n, { cmd: 'status' }, LS_TIMEOUT_MS).then((s) => s as MasterStatus, (err: Error) => err);
        if (!(r instanceof Error)) {
          all.push({ ...r, state: 'running' });
          rows.push([r.name, String(r.pid), 'running', `${r.workers.length}/${r.workersWanted}`, ms(r.uptimeMs), r.app, poisonFlag(r)]);
          continue;
        }
        const pid = lockHolder(p.runDir, n);
        if (pid === undefined) continue; // a crashed master's leftovers
        all.push({ name: n, pid, state: 'not answering', error: r.message });
        rows.push([n, String(pid), 'not answering', '-', '-', '-', '-']);
      }
      out(all, all.length ? table(rows) : `no supervisor running (run dir ${p.runDir})\n`);
      return 0;
    }
    case 'status': {
      const name = await pickName(p, p.positional[0]);
      const s = await request(p.runDir, name, { cmd: 'status' }, p.timeout) as MasterStatus;
      out(s, renderStatus(s));
      return 0;
    }
    case 'reload': {
      const name = await pickName(p, p.positional[0]);
      const r = await request(p.runDir, name, { cmd: 'reload' }, p.timeout ?? 10 * 60_000) as { replaced: number; notApplied?: string[] };
      const kept = r.notApplied?.length ? `; not applied (read only at start: stop, then start): ${r.notApplied.join(', ')}\n` : '';
      out(r, `${name}: reloaded, ${r.replaced} worker(s) replaced\n${kept}`);
      return 0;
    }
    case 'scale': {
      const [name, to] = p.positional;
      if (!name || !to || !/^[+-]?\d+$/.test(to)) throw new SupervError('SUPERV_ERR_USAGE', 'superv scale NAME N|+N|-N');
      const problem = scaleProblem(to);
      if (problem) throw new SupervError('SUPERV_ERR_BAD_VALUE', 'superv scale', problem);
      const r = await request(p.runDir, name, { cmd: 'scale', to }, p.timeout) as { workers: number };
      out(r, `${name}: scaling to ${r.workers} worker(s)\n`);
      return 0;
    }
    case 'stop': {
      const name = await pickName(p, p.positional[0]);
      const pid = lockHolder(p.runDir, name);
      const r = await request(p.runDir, name, { cmd: 'stop' }, p.timeout) as { stopping: string; gracefulTimeoutMs?: number };
      if (!p.wait || pid === undefined) {
        out(r, `${name}: stopping gracefully\n`);
        return 0;
      }
      // Returns when the master has exited, so `superv stop x && superv start x` works: the workers get the
      // graceful timeout, the master a little more to end its own.
      const waitMs = (r.gracefulTimeoutMs ?? 30_000) + STOP_GRACE_MS;
      if (!(await exited(p.runDir, name, waitMs))) {
        throw new SupervError('SUPERV_ERR_CONTROL', `${name} (pid ${pid}) is still running ${ms(waitMs)} after it was asked to stop`);
      }
      out({ ...r, stopped: true }, `${name}: stopped\n`);
      return 0;
    }
    case 'dump': {
      const [name, worker] = p.positional;
      if (!name || (worker !== undefined && !/^\d+$/.test(worker))) throw new SupervError('SUPERV_ERR_USAGE', 'superv dump NAME [WORKER]');
      const r = await request(p.runDir, name, { cmd: 'dump', worker: worker ? Number(worker) : undefined }, p.timeout ?? 60_000) as { files: string[] };
      out(r, r.files.map((f) => f + '\n').join(''));
      return r.files.length > 0 ? 0 : 1;
    }
    default:
      throw new SupervError('SUPERV_ERR_USAGE', `unknown command ${cmd}`);
  }
}
