// User hooks: shell commands superv runs on events (today: after a dump is written). A hook is bounded
// by hook_timeout, its output goes to the master's stderr, and its failure is logged and changes nothing
// else: a broken uploader must never stop a kill or a restart.

import { spawn } from 'node:child_process';
import type { Logger } from './logger';

export function runHook(name: string, command: string, arg: string, env: Record<string, string>, timeoutMs: number, log: Logger): void {
  if (command === '') return;
  const started = Date.now();
  // `sh -c CMD NAME ARG`: inside CMD, "$1" is the argument; the env var carries it too.
  const child = spawn('/bin/sh', ['-c', command, `superv-${name}`, arg], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  const timer = setTimeout(() => {
    log.error({ event: 'hook-timeout', hook: name, timeoutMs }, `hook ${name} still running after ${timeoutMs} ms: killed`);
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
  }, timeoutMs);
  timer.unref();
  child.on('error', (err) => {
    clearTimeout(timer);
    log.error({ event: 'hook-failed', hook: name, err: err.message }, `hook ${name} could not start: ${err.message}`);
  });
  child.on('exit', (code, signal) => {
    clearTimeout(timer);
    const ms = Date.now() - started;
    if (code === 0) log.info({ event: 'hook-done', hook: name, ms }, `hook ${name} done`);
    else log.error({ event: 'hook-failed', hook: name, code, signal, ms }, `hook ${name} failed (${signal ?? `code ${code}`})`);
  });
}
