// User hooks: shell commands superv runs on events (today: after a dump is written). A broken uploader must
// never stop a kill or a restart, and a hook must not outlive its bounds:
// - at most `hook_concurrency` run at once; more wait in a bounded queue (10 manual dumps used to start 20
//   concurrent hooks);
// - each runs in its own process group, which is ended (SIGKILL) at `hook_timeout`, when the hook's shell
//   exits (a backgrounded `cmd &` no longer survives it) and when the master stops. What escapes a process
//   group: a child that calls setsid() or setpgid() (`setsid cmd`, daemons that double-fork into a new session);
//   superv cannot see those;
// - its output is recorded line by line as `hook NAME stdout|stderr` (output.ts), never written raw into the log.

import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from './logger';
import type { OutputRecorder } from './output';

/** Hooks waiting for a free slot, at most; beyond it the newest are dropped (and logged). */
const MAX_QUEUED = 100;

export interface HookRun {
  name: string;
  command: string;
  arg: string;
  env: Record<string, string>;
  timeoutMs: number;
}

export class HookRunner {
  private readonly running = new Map<number, { name: string; child: ChildProcess }>();
  private readonly queue: HookRun[] = [];
  private stopped = false;

  constructor(private readonly log: Logger, private readonly output: OutputRecorder | undefined, public concurrency: number) {}

  run(h: HookRun): void {
    if (h.command === '' || this.stopped) return;
    if (this.running.size < this.concurrency) { this.start(h); return; }
    if (this.queue.length >= MAX_QUEUED) {
      this.log.error({ event: 'hook-dropped', hook: h.name, arg: h.arg, queued: this.queue.length },
        `hook ${h.name} dropped: ${this.running.size} running and ${this.queue.length} waiting (hook_concurrency ${this.concurrency})`);
      return;
    }
    this.queue.push(h);
  }

  private start(h: HookRun): void {
    const started = Date.now();
    // `sh -c CMD NAME ARG`: inside CMD, "$1" is the argument; the env var carries it too.
    const child = spawn('/bin/sh', ['-c', h.command, `superv-${h.name}`, h.arg], {
      env: { ...process.env, ...h.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, ended as a whole
    });
    const pid = child.pid;
    this.output?.attach(child.stdout, `hook ${h.name} stdout`, 'out');
    this.output?.attach(child.stderr, `hook ${h.name} stderr`, 'err');
    if (pid === undefined) {
      child.once('error', (err) => {
        this.log.error({ event: 'hook-failed', hook: h.name, err: err.message }, `hook ${h.name} could not start: ${err.message}`);
        this.next();
      });
      return;
    }
    this.running.set(pid, { name: h.name, child });
    const timer = setTimeout(() => {
      this.log.error({ event: 'hook-timeout', hook: h.name, timeoutMs: h.timeoutMs }, `hook ${h.name} still running after ${h.timeoutMs} ms: killed with its process group`);
      killGroup(pid);
    }, h.timeoutMs);
    timer.unref();
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // What the hook left running in its group (`uploader &`) ends with it.
      killGroup(pid);
      this.running.delete(pid);
      const ms = Date.now() - started;
      if (code === 0) this.log.info({ event: 'hook-done', hook: h.name, ms }, `hook ${h.name} done`);
      else this.log.error({ event: 'hook-failed', hook: h.name, code, signal, ms }, `hook ${h.name} failed (${signal ?? `code ${code}`})`);
      this.next();
    });
  }

  private next(): void {
    const h = this.queue.shift();
    if (h) this.start(h);
  }

  /** At the master's stop: drops the waiting hooks and ends the running ones with their process groups. */
  stopAll(): void {
    this.stopped = true;
    if (this.queue.length > 0) this.log.warn({ event: 'hook-dropped', queued: this.queue.length }, `${this.queue.length} waiting hook(s) dropped at stop`);
    this.queue.length = 0;
    for (const [pid, { name }] of this.running) {
      this.log.warn({ event: 'hook-killed', hook: name, pid }, `hook ${name} (pid ${pid}) still running at stop: killed with its process group`);
      killGroup(pid);
    }
  }
}

function killGroup(pgid: number): void {
  try { process.kill(-pgid, 'SIGKILL'); } catch { /* the group is gone */ }
}
