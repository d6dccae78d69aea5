// The control commands: `superv ls | status | reload | scale | stop | dump`, each one request over the
// named supervisor's control socket.

import { resolve } from 'node:path';
import { request, socketNames } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { SupervError } from '../errors';
import type { MasterStatus, WorkerStatus } from '../master/status';

interface Parsed { positional: string[]; json: boolean; runDir: string }

function parse(argv: string[]): Parsed {
  const out: Parsed = { positional: [], json: false, runDir: resolve(defaultRunDir()) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') out.json = true;
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

/** The named supervisor, or the only one running when no name is given. */
async function pickName(p: Parsed, given: string | undefined): Promise<string> {
  if (given) return given;
  const live: string[] = [];
  for (const n of socketNames(p.runDir)) {
    if (await request(p.runDir, n, { cmd: 'status' }, 3000).then(() => true, () => false)) live.push(n);
  }
  if (live.length === 1) return live[0]!;
  if (live.length === 0) throw new SupervError('SUPERV_ERR_NOT_RUNNING', `(any, in ${p.runDir})`);
  throw new SupervError('SUPERV_ERR_USAGE', `several supervisors are running (${live.join(', ')}): name one`);
}

function ms(n: number): string {
  if (n < 1000) return `${Math.round(n)}ms`;
  if (n < 120_000) return `${(n / 1000).toFixed(1)}s`;
  if (n < 7_200_000) return `${Math.round(n / 60_000)}m`;
  return `${(n / 3_600_000).toFixed(1)}h`;
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
    `${s.restarts} restart(s)\n  app ${s.app}\n  dumps ${s.dumpDir}${s.configFile ? `\n  config ${s.configFile}` : ''}${s.metrics ? `\n  metrics ${s.metrics}` : ''}\n\n`;
  const rows = [['ID', 'PID', 'STATE', 'UPTIME', 'SERVED', 'INFLIGHT', 'OLDEST', 'LOOP p99', 'CPU', 'RSS', 'LAST DUMP']];
  for (const w of s.workers as WorkerStatus[]) {
    rows.push([String(w.id), String(w.pid), w.state, ms(w.uptimeMs), String(w.served), String(w.inflight),
      w.oldest ? `${ms(w.oldest.ageMs)} ${w.oldest.method} ${w.oldest.url}`.slice(0, 48) : '-',
      w.loopDelayP99Ms === undefined ? '-' : `${w.loopDelayP99Ms}ms`,
      w.cpuPercent === undefined ? '-' : `${w.cpuPercent}%`, mib(w.rss), w.lastDump ? w.lastDump.split('/').pop()! : '-']);
  }
  return head + table(rows);
}

export async function runControlCommand(cmd: string, argv: string[]): Promise<number> {
  const p = parse(argv);
  const out = (v: unknown, human: string) => process.stdout.write(p.json ? JSON.stringify(v, null, 2) + '\n' : human);
  switch (cmd) {
    case 'ls': {
      const rows = [['NAME', 'PID', 'WORKERS', 'UPTIME', 'APP']];
      const all: MasterStatus[] = [];
      for (const n of socketNames(p.runDir)) {
        const s = await request(p.runDir, n, { cmd: 'status' }, 3000).catch(() => undefined) as MasterStatus | undefined;
        if (s) { all.push(s); rows.push([s.name, String(s.pid), `${s.workers.length}/${s.workersWanted}`, ms(s.uptimeMs), s.app]); }
      }
      out(all, all.length ? table(rows) : `no supervisor running (run dir ${p.runDir})\n`);
      return 0;
    }
    case 'status': {
      const name = await pickName(p, p.positional[0]);
      const s = await request(p.runDir, name, { cmd: 'status' }) as MasterStatus;
      out(s, renderStatus(s));
      return 0;
    }
    case 'reload': {
      const name = await pickName(p, p.positional[0]);
      const r = await request(p.runDir, name, { cmd: 'reload' }, 10 * 60_000) as { replaced: number };
      out(r, `${name}: reloaded, ${r.replaced} worker(s) replaced\n`);
      return 0;
    }
    case 'scale': {
      const [name, to] = p.positional;
      if (!name || !to || !/^[+-]?\d+$/.test(to)) throw new SupervError('SUPERV_ERR_USAGE', 'superv scale NAME N|+N|-N');
      const r = await request(p.runDir, name, { cmd: 'scale', to }) as { workers: number };
      out(r, `${name}: scaling to ${r.workers} worker(s)\n`);
      return 0;
    }
    case 'stop': {
      const name = await pickName(p, p.positional[0]);
      const r = await request(p.runDir, name, { cmd: 'stop' });
      out(r, `${name}: stopping gracefully\n`);
      return 0;
    }
    case 'dump': {
      const [name, worker] = p.positional;
      if (!name || (worker !== undefined && !/^\d+$/.test(worker))) throw new SupervError('SUPERV_ERR_USAGE', 'superv dump NAME [WORKER]');
      const r = await request(p.runDir, name, { cmd: 'dump', worker: worker ? Number(worker) : undefined }) as { files: string[] };
      out(r, r.files.map((f) => f + '\n').join(''));
      return r.files.length > 0 ? 0 : 1;
    }
    default:
      throw new SupervError('SUPERV_ERR_USAGE', `unknown command ${cmd}`);
  }
}
