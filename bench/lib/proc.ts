// What /proc says about the processes under test, plus the bookkeeping that lets the bench clean up after
// itself by pid (never by name): every process it starts is registered here and killed on exit.

import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** VmRSS in KiB, or NaN when the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Memory only this process holds (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup), in KiB, or NaN.
 * RSS also counts the pages of the node binary the process has touched: shared with every other node process
 * and the page cache, and varying run to run with what the kernel maps around each fault (~40–50 MiB of a
 * Node 24 master's RSS).
 */
export function privateKiB(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    return kib('Private_Clean') + kib('Private_Dirty');
  } catch {
    return Number.NaN;
  }
}

/** utime + stime of the whole process, in clock ticks (fields 14 and 15 of /proc/PID/stat). */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]);
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time of every thread of `pid`, in ns, from /proc/PID/task/TID/schedstat (the scheduler's own run
 * time): the idle figure's fractions of a percent are below what 10 ms clock ticks can resolve.
 */
export function cpuNs(pid: number): number {
  let sum = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { sum += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread ended */ }
    }
    return sum;
  } catch {
    return Number.NaN;
  }
}

let clkTck: number | undefined;
export function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

function ppidOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** Direct children of `pid`: from /proc/PID/task/TID/children when the kernel has it, else by scanning ppids. */
export function childrenOf(pid: number): number[] {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    const first = `/proc/${pid}/task/${tasks[0]}/children`;
    if (tasks.length > 0 && existsSync(first)) {
      const out = new Set<number>();
      for (const t of tasks) {
        for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.add(Number(c));
      }
      return [...out].sort((a, b) => a - b);
    }
  } catch {
    return [];
  }
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => ppidOf(p) === pid).sort((a, b) => a - b);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0) until its parent reaps it.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pids.every((p) => !isAlive(p))) return true;
    await sleep(25);
  }
  return pids.every((p) => !isAlive(p));
}

export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

/** A port free on 127.0.0.1 right now (the OS picks it; the tiny race before reuse is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// ─── cleanup registry ──────────────────────────────────────────────────────

type Cleanup = () => void;
const owned = new Set<number>();
const cleanups = new Set<Cleanup>();

/** The bench started this process: SIGKILL it (and what it forked) if the bench exits first. */
export function own(pid: number | undefined): void {
  if (pid !== undefined) owned.add(pid);
}

export function disown(pid: number | undefined): void {
  if (pid !== undefined) owned.delete(pid);
}

/** A synchronous last-resort cleanup (e.g. `pm2 kill` for the bench's own PM2_HOME). */
export function onCleanup(fn: Cleanup): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export function killOwned(): void {
  for (const pid of owned) {
    for (const c of childrenOf(pid)) signal(c, 'SIGKILL');
    signal(pid, 'SIGKILL');
  }
  owned.clear();
  // Newest first: a daemon registered after the scratch dir is killed (reading its pid file) before the dir goes.
  for (const fn of [...cleanups].reverse()) { try { fn(); } catch { /* best effort */ } }
  cleanups.clear();
}
