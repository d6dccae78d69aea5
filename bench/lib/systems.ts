// Starting and stopping the three systems under test, all serving the same fixture app on 127.0.0.1:
//   superv   node dist/src/cli.js start APP --workers N --log-format json
//   cluster  node bench/fixtures/cluster.js APP  (a bare node:cluster primary)
//   pm2      pm2 cluster mode, in a PM2_HOME of its own (never the user's daemon), stopped with `pm2 kill`
// Every process is registered for cleanup by pid.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogTail } from './log-tail';
import { FIXTURES, PM2_BIN, SUPERV_CLI } from './paths';
import { childrenOf, disown, isAlive, onCleanup, own, signal, waitExit, waitGone } from './proc';

export { FIXTURES, PM2_BIN, REPO, SUPERV_CLI } from './paths';

export type SystemName = 'superv' | 'cluster' | 'pm2';
export const LABEL: Record<SystemName, string> = { superv: 'superv', cluster: 'bare cluster', pm2: 'pm2 cluster' };

export interface StartOptions {
  app: string;
  workers: number;
  port: number;
  /** Extra env for the app (all systems). */
  env?: Record<string, string>;
}

export interface Running {
  name: SystemName;
  port: number;
  url: string;
  /** superv's master, the bare primary, or pm2's daemon: the process that owns the workers. */
  masterPid: number;
  /** The processes that serve the app's requests. */
  workerPids(): number[];
  /** The supervisor's own processes besides the master that serve nothing (superv's port keeper). */
  helperPids(): number[];
  stop(): Promise<void>;
}

/**
 * superv's port keeper (src/master/listen-keeper.ts) is a cluster child too, but serves nothing: counted as a
 * worker it skewed the per-worker medians and could be picked as "the" worker.
 */
function isPortKeeper(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('keeper-child');
  } catch {
    return false;
  }
}

export interface SupervRunning extends Running {
  name: 'superv';
  log: LogTail;
  runDir: string;
  supervName: string;
  dumpDir: string;
  stderr(): string;
  /** Resolves when the master exits. */
  exited: Promise<void>;
}

/** A private scratch dir for this bench run (run dirs, dump dirs, PM2_HOME); removed at the end. */
export const SCRATCH = mkdtempSync(join(tmpdir(), 'superv-bench-'));
onCleanup(() => rmSync(SCRATCH, { recursive: true, force: true }));

/** The bench's own environment minus anything that would configure superv or pm2 behind our back. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('SUPERV_') && !k.startsWith('PM2_') && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return { ...env, ...extra };
}

function tailOf(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => { text = (text + c).slice(-16_384); });
  return () => text;
}

let seq = 0;

// ─── superv ────────────────────────────────────────────────────────────────

export function startSuperv(o: StartOptions, extraArgs: readonly string[] = []): SupervRunning {
  const supervName = `bench-${process.pid}-${++seq}`;
  const runDir = join(SCRATCH, 'run');
  const dumpDir = join(SCRATCH, `dumps-${seq}`);
  const args = [SUPERV_CLI, 'start', o.app, '--workers', String(o.workers), '--log-format', 'json', '--name', supervName,
    '--run-dir', runDir, '--dump-dir', dumpDir, ...extraArgs];
  const child = spawn(process.execPath, args, { env: cleanEnv({ ...o.env, PORT: String(o.port) }), stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn superv');
  own(pid);
  const log = new LogTail(child.stdout!);
  const stderr = tailOf(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    name: 'superv', port: o.port, url: `http://127.0.0.1:${o.port}`, masterPid: pid, log, runDir, supervName, dumpDir, stderr, exited,
    workerPids: () => childrenOf(pid).filter((c) => !isPortKeeper(c)),
    helperPids: () => childrenOf(pid).filter(isPortKeeper),
    stop: async () => {
      const workers = childrenOf(pid);
      // Quick stop (SIGQUIT): a graceful one would wait for workers a figure left blocked on purpose.
      signal(pid, 'SIGQUIT');
      if (!(await waitExit(child, 15_000))) signal(pid, 'SIGKILL');
      if (!(await waitGone(workers, 5_000))) for (const w of workers) signal(w, 'SIGKILL');
      disown(pid);
    },
  };
}

// ─── bare node:cluster ─────────────────────────────────────────────────────

export function startCluster(o: StartOptions): Running {
  const child = spawn(process.execPath, [join(FIXTURES, 'cluster.js'), o.app],
    { env: cleanEnv({ ...o.env, PORT: String(o.port), WORKERS: String(o.workers) }), stdio: ['ignore', 'ignore', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the bare cluster primary');
  own(pid);
  tailOf(child);
  return {
    name: 'cluster', port: o.port, url: `http://127.0.0.1:${o.port}`, masterPid: pid,
    workerPids: () => childrenOf(pid),
    helperPids: () => [],
    stop: async () => {
      const workers = childrenOf(pid);
      signal(pid, 'SIGTERM');
      if (!(await waitExit(child, 10_000))) signal(pid, 'SIGKILL');
      if (!(await waitGone(workers, 5_000))) for (const w of workers) signal(w, 'SIGKILL');
      disown(pid);
    },
  };
}

// ─── pm2 ───────────────────────────────────────────────────────────────────

export interface Pm2Result { code: number | null; stdout: string; stderr: string }

/** One pm2 daemon of our own: PM2_HOME in the scratch dir, so `pm2 kill` can only ever reach it. */
export class Pm2Home {
  readonly home = join(SCRATCH, `pm2-${++seq}`);
  private readonly removeCleanup: () => void;

  constructor() {
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    // If the bench dies, the daemon must not outlive it; its pid file names exactly our daemon.
    this.removeCleanup = onCleanup(() => {
      const pid = this.daemonPid();
      if (pid !== undefined) { for (const c of childrenOf(pid)) signal(c, 'SIGKILL'); signal(pid, 'SIGKILL'); }
    });
  }

  static available(): boolean {
    return existsSync(PM2_BIN);
  }

  /** Runs the pm2 CLI against this home, bounded in time. */
  cmd(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Pm2Result> {
    return new Promise((resolve) => {
      execFile(process.execPath, [PM2_BIN, ...args], { env: cleanEnv({ ...env, PM2_HOME: this.home }), timeout: timeoutMs, maxBuffer: 8 << 20 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
  }

  daemonPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.home, 'pm2.pid'), 'utf8').trim());
      return pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Starts the daemon with no app (for timings that should not include the daemon's own start). */
  async ensureDaemon(): Promise<void> {
    const r = await this.cmd(['ping']);
    if (r.code !== 0) throw new Error(`pm2 ping failed: ${r.stderr || r.stdout}`);
  }

  /** `pm2 start` of an ecosystem file; resolves when the CLI returns (the app may still be booting). */
  async start(o: StartOptions, appName: string): Promise<Running> {
    const eco = join(this.home, `${appName}.json`);
    writeFileSync(eco, JSON.stringify({
      apps: [{ name: appName, script: o.app, instances: o.workers, exec_mode: 'cluster', env: { ...o.env, PORT: String(o.port) } }],
    }));
    const r = await this.cmd(['start', eco]);
    if (r.code !== 0) throw new Error(`pm2 start failed: ${r.stderr || r.stdout}`);
    const daemon = this.daemonPid();
    if (daemon === undefined) throw new Error('pm2 start: no daemon pid');
    return {
      name: 'pm2', port: o.port, url: `http://127.0.0.1:${o.port}`, masterPid: daemon,
      workerPids: () => childrenOf(daemon),
      helperPids: () => [],
      stop: async () => {
        const workers = childrenOf(daemon);
        await this.cmd(['delete', appName]);
        if (!(await waitGone(workers, 5_000))) for (const w of workers) signal(w, 'SIGKILL');
      },
    };
  }

  /** `pm2 kill` for this home only, then make sure the daemon is gone. */
  async kill(): Promise<void> {
    const pid = this.daemonPid();
    const workers = pid === undefined ? [] : childrenOf(pid);
    await this.cmd(['kill'], {}, 30_000);
    if (pid !== undefined && !(await waitGone([pid, ...workers], 5_000))) {
      for (const p of [pid, ...workers]) signal(p, 'SIGKILL');
    }
    this.removeCleanup();
  }
}
