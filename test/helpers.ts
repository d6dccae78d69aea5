// Shared test plumbing: start the real CLI, read its JSON log lines, make real HTTP requests over
// 127.0.0.1, and clean up by PID (the master's process group), never by name.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MasterStatus } from '../src/master/status';

export const ROOT = join(__dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export type LogLine = { event?: string; msg?: string; worker?: number; pid?: number; [k: string]: unknown };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export function tempDir(prefix = 'superv-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export class Superv {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stdout = '';
  stderr = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;

  /** Where its control socket is: each supervisor gets its own, so tests side by side never share a name. */
  readonly runDir: string;

  /** `opts.command`: what runs instead of `node dist/src/cli.js` (an installed copy's bin, say). */
  constructor(args: string[], opts: { env?: Record<string, string>; cwd?: string; command?: string } = {}) {
    this.runDir = opts.env?.SUPERV_RUN_DIR ?? tempDir('superv-run-');
    const [file, argv] = opts.command ? [opts.command, args] : [process.execPath, [CLI, ...args]];
    this.child = spawn(file, argv, {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, SUPERV_LOG_FORMAT: 'json', ...opts.env, SUPERV_RUN_DIR: this.runDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so cleanup can reach the workers by the master's PID.
      detached: true,
    });
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) {
          try { this.lines.push(JSON.parse(line) as LogLine); } catch { /* app output */ }
        }
      }
      this.wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; this.wake(); });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => { this.wake(); resolve({ code, signal }); }));
    live.add(this);
  }

  /**
   * Waits until the workers' heartbeats report at least `n` requests in flight (a request that awaits I/O;
   * one that blocks its loop never shows in a heartbeat). Polls `superv status`, instead of a fixed sleep.
   */
  async waitInflight(n = 1, timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'status', '--json'], { env: { ...process.env, SUPERV_RUN_DIR: this.runDir } })
        .catch(() => ({ stdout: '{"workers":[]}' }));
      const st = JSON.parse(stdout) as Pick<MasterStatus, 'workers'>;
      if (st.workers.reduce((a, w) => a + w.inflight, 0) >= n) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} request(s) in flight\n${this.stdout.slice(-3000)}`);
      await sleep(50);
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred` holds for the log lines seen so far; throws with the log after `timeoutMs`. */
  async waitFor<T>(pred: (lines: LogLine[]) => T | undefined | false, timeoutMs = 15000, what = 'condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred(this.lines);
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}\n--- stdout ---\n${this.stdout.slice(-4000)}\n--- stderr ---\n${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  waitEvent(event: string, n = 1, timeoutMs = 15000, extra?: (l: LogLine) => boolean): Promise<LogLine[]> {
    return this.waitFor((ls) => {
      const hits = ls.filter((l) => l.event === event && (!extra || extra(l)));
      return hits.length >= n ? hits : undefined;
    }, timeoutMs, `${n}× ${event}`);
  }

  events(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  workerPids(): number[] {
    const exited = new Set(this.events('worker-exited').map((l) => l.pid));
    return [...new Set(this.events('worker-spawned').map((l) => l.pid as number))].filter((p) => !exited.has(p));
  }

  /** Workers that listened and have not exited. */
  readyPids(): number[] {
    const exited = new Set(this.events('worker-exited').map((l) => l.pid));
    return [...new Set(this.events('worker-ready').map((l) => l.pid as number))].filter((p) => !exited.has(p));
  }

  allWorkerPids(): number[] {
    return [...new Set(this.events('worker-spawned').map((l) => l.pid as number))];
  }

  signal(sig: NodeJS.Signals): void {
    try { process.kill(this.pid, sig); } catch { /* gone */ }
  }

  /** SIGKILLs the master's whole process group (its workers included) and waits for the master. */
  async kill(): Promise<void> {
    for (const pid of this.allWorkerPids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* gone */ }
    if (this.child.exitCode === null && this.child.signalCode === null) await this.exited;
    live.delete(this);
  }
}

/**
 * Starts the real CLI on `app` the way the end-to-end suites do: a free port, a fresh dump dir and run dir
 * (unless given), 200 ms heartbeats so that stuck workers are noticed quickly, and `extra` arguments last so
 * that they win. Resolves once the master is ready.
 */
export async function startSuperv(app: string, extra: string[],
  opts: { dumpDir?: string; runDir?: string; name?: string; env?: Record<string, string> } = {}): Promise<{ s: Superv; port: number; dir: string; runDir: string }> {
  const port = await freePort();
  const dir = opts.dumpDir ?? tempDir();
  const runDir = opts.runDir ?? tempDir('superv-run-');
  const s = new Superv(['start', app, '--dump-dir', dir, '--heartbeat-interval', '200ms', ...(opts.name ? ['--name', opts.name] : []), ...extra],
    { env: { PORT: String(port), SUPERV_RUN_DIR: runDir, ...opts.env } });
  await s.waitEvent('master-ready');
  return { s, port, dir, runDir };
}

/** `superv status NAME --json` of the supervisor whose run dir is `runDir`, through the real CLI. */
export async function supervStatus(runDir: string, name = 'app'): Promise<MasterStatus> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'status', name, '--json'], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
  return JSON.parse(stdout) as MasterStatus;
}

const live = new Set<Superv>();
/** Kills every supervisor a test file started; call from `after()`. */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((s) => s.kill()));
}
process.on('exit', () => {
  for (const s of live) { try { process.kill(-s.pid, 'SIGKILL'); } catch { /* gone */ } }
});

export interface Reply { status: number; body: string; headers: http.IncomingHttpHeaders }

export function get(port: number, path: string, opts: { timeoutMs?: number; agent?: http.Agent | false; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: opts.agent ?? false, headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

/** Retries GET until it answers (the server may still be booting). */
export async function getWhenUp(port: number, path = '/', timeoutMs = 15000): Promise<Reply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await get(port, path, { timeoutMs: 2000 });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether `pid` runs; a zombie (exited, not yet reaped by whoever adopted it) counts as dead. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function rmrf(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs `superv ARGS` against the run dir `runDir` and returns its output and exit code (never throws). */
export async function cli(runDir: string, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}
