// What holding many requests costs (issue 21): one worker holds 10, 100, 1,000 and 10,000 long-polls
// (`/hold`, never answered) while nothing else happens, under superv and under a bare node:cluster primary
// holding the same connections. Per count: the worker's CPU over a window (superv's: its heartbeat, its
// 50 ms tick and the watchdog thread's slow check, which scans the held requests because they are all past
// `slow` — the worst case, the route being exempt), the master's CPU (it receives the heartbeats), and a
// manual dump's capture time and file size with that many in flight. CPU is utime + stime from
// /proc/PID/stat (threads included), as a percentage of one core.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pollUntil200 } from '../lib/http';
import type { Plan } from '../lib/plan';
import { cpuTicks, freePort, sleep, ticksPerSecond } from '../lib/proc';
import type { FigureResult, Row } from '../lib/report';
import { fixed } from '../lib/stats';
import { FIXTURES, SUPERV_CLI, startCluster, startSuperv, type Running, type SupervRunning } from '../lib/systems';

const COUNTS = [10, 100, 1000, 10_000] as const;
const APP = join(FIXTURES, 'hold.js');
/** Held requests are past this when measured, so the watchdog's scan runs (they are exempt, so no dumps). */
const SLOW = '2s';

interface Point {
  workerPct: number;
  masterPct: number;
  captureMs?: number;
  dumpBytes?: number;
  listed?: number;
  more?: number;
}

/** Sockets (connections) the process holds: what tells that the worker has them all, under either system. */
function socketFds(pid: number): number {
  try {
    let n = 0;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try { if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++; } catch { /* closed meanwhile */ }
    }
    return n;
  } catch {
    return 0;
  }
}

/** Connections the client could not open (on a shared machine: ephemeral ports still in TIME_WAIT). */
let connectErrors = 0;

async function openHeld(port: number, socks: Socket[], upTo: number): Promise<void> {
  while (socks.length < upTo) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => { connectErrors++; });
    s.write(`GET /hold?n=${socks.length} HTTP/1.1\r\nHost: x\r\n\r\n`);
    socks.push(s);
    if (socks.length % 500 === 0) await sleep(20);
  }
}

async function waitHeld(pid: number, n: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (socketFds(pid) >= n) return true;
    await sleep(200);
  }
  return false;
}

function pct(ticks: number, wallS: number): number {
  return (ticks / ticksPerSecond() / wallS) * 100;
}

async function dumpOnce(run: SupervRunning): Promise<Pick<Point, 'captureMs' | 'dumpBytes' | 'listed' | 'more'>> {
  const { stdout } = await promisify(execFile)(process.execPath, [SUPERV_CLI, 'dump', run.supervName, '--run-dir', run.runDir], { timeout: 60_000 });
  const file = stdout.trim();
  const d = JSON.parse(readFileSync(file, 'utf8')) as { capture?: { elapsedMs: number; inflight: unknown[]; inflightMore?: { count: number } } };
  return { captureMs: d.capture?.elapsedMs, dumpBytes: statSync(file).size, listed: d.capture?.inflight.length, more: d.capture?.inflightMore?.count ?? 0 };
}

async function measure(plan: Plan, run: Running, notes: string[]): Promise<Map<number, Point>> {
  const out = new Map<number, Point>();
  const socks: Socket[] = [];
  try {
    const [worker] = run.workerPids();
    if (worker === undefined) throw new Error(`${run.name}: no worker`);
    for (const n of COUNTS) {
      await openHeld(run.port, socks, n);
      // At least n sockets: a keep-alive connection of the readiness probe may come and go, so no baseline.
      if (!(await waitHeld(worker, n, 120_000))) notes.push(`inflight: ${run.name} worker did not hold ${n} connections within 120 s`);
      await sleep(2500); // past SLOW, and the accept burst's GC settled
      const w0 = cpuTicks(worker);
      const m0 = cpuTicks(run.masterPid);
      const t0 = Date.now();
      await sleep(plan.inflightSeconds * 1000);
      const wall = (Date.now() - t0) / 1000;
      const p: Point = { workerPct: pct(cpuTicks(worker) - w0, wall), masterPct: pct(cpuTicks(run.masterPid) - m0, wall) };
      if (run.name === 'superv') Object.assign(p, await dumpOnce(run as SupervRunning));
      out.set(n, p);
    }
  } finally {
    // A reset, not a FIN: 10,000 closes would leave 10,000 ports in TIME_WAIT for the next system's run.
    for (const s of socks) s.resetAndDestroy();
    await run.stop();
  }
  if (connectErrors > 0) notes.push(`inflight: ${run.name}: ${connectErrors} connection(s) failed to open`);
  connectErrors = 0;
  return out;
}

export async function inflightFigure(plan: Plan): Promise<FigureResult> {
  const notes: string[] = [];
  const sPort = await freePort();
  const superv = startSuperv({ app: APP, workers: 1, port: sPort }, ['--slow', SLOW, '--slow-exempt', '/hold', '--listen-timeout', '60s']);
  if (!(await superv.log.waitFor((e) => e.event === 'master-ready', 60_000))) throw new Error('superv did not get ready within 60 s');
  const sv = await measure(plan, superv, notes);
  const cPort = await freePort();
  const cluster = startCluster({ app: APP, workers: 1, port: cPort });
  if (await pollUntil200(`http://127.0.0.1:${cPort}/`, Date.now() + 30_000) === undefined) throw new Error('the bare cluster did not answer within 30 s');
  const bare = await measure(plan, cluster, notes);
  const rows: Row[] = COUNTS.map((n) => {
    const s = sv.get(n);
    const b = bare.get(n);
    const dump = s?.captureMs !== undefined ? `dump: capture ${fixed(s.captureMs)} ms, ${fixed((s.dumpBytes ?? 0) / 1024)} KiB` : 'dump: n/a';
    return {
      figure: `worker CPU holding ${n.toLocaleString('en-US')} requests in flight (1 worker, idle, ${plan.inflightSeconds} s window)`,
      superv: s ? `${fixed(s.workerPct, 2)} %` : 'n/a',
      bare: b ? `${fixed(b.workerPct, 2)} %` : 'n/a',
      pm2: '—',
      compare: s && b ? `${s.workerPct - b.workerPct >= 0 ? '+' : ''}${fixed(s.workerPct - b.workerPct, 2)} pp; ${dump}` : dump,
      target: 'flat in N', result: 'info',
    };
  });
  const detail = COUNTS.map((n) => {
    const s = sv.get(n);
    return s ? `${n.toLocaleString('en-US')}: superv worker ${fixed(s.workerPct, 2)} %, master ${fixed(s.masterPct, 2)} %, bare worker ` +
      `${fixed(bare.get(n)?.workerPct ?? Number.NaN, 2)} %; dump lists ${s.listed ?? '?'} + counts ${s.more ?? '?'}, ` +
      `capture ${fixed(s.captureMs ?? Number.NaN)} ms, ${fixed((s.dumpBytes ?? 0) / 1024, 1)} KiB` : `${n}: n/a`;
  });
  return {
    rows,
    details: [`**Requests held in flight** (one worker holding N never-answered long-polls, \`slow\` ${SLOW} with the route exempt so ` +
      `the watchdog scans them every tick; % of one core over ${plan.inflightSeconds} s, ${ticksPerSecond()} ticks/s): ${detail.join('; ')}.`],
    notes,
  };
}
