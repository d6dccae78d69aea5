// What a worker is started with: the bootstrap file that runs before the app, and its options, passed in
// one env var that the bootstrap removes before the app loads (so the app's own children never see it).

import { join } from 'node:path';
import type { Config } from '../config/settings';
import { SupervError } from '../errors';
import { WORKER_OPTIONS_ENV, type WorkerOptions } from '../protocol';

/** Linux's MAX_ARG_STRLEN: the longest single `KEY=VALUE` string execve takes. */
const MAX_ENV_STRING = 128 * 1024;
/**
 * What superv lets a worker's environment and arguments take together. execve's own limit is a quarter of the
 * stack limit (2 MiB under the usual 8 MiB), shared with argv; staying at 1 MiB leaves room for both.
 */
const MAX_ENV_TOTAL = 1024 * 1024;


export function workerBootstrapPath(): string {
  return join(__dirname, '..', 'worker', 'bootstrap.js');
}

export function workerOptionsEnv(config: Config, masterPid: number, crashDir = ''): Record<string, string> {
  const opts: WorkerOptions = {
    app: config.app,
    name: config.name,
    masterPid,
    heartbeatInterval: config.heartbeatInterval,
    timeout: config.timeout,
    slow: config.slow,
    slowExempt: config.slowExempt,
    dumpTimeout: config.dumpTimeout,
    instrument: config.instrument,
    recordSqlValues: config.recordSqlValues,
    lockLookup: config.lockLookup,
    heapWarn: config.heapWarn,
    crashLocals: config.crashLocals,
    crashDir,
    cpuSampleInterval: config.cpuSampleInterval,
  };
  const env: Record<string, string> = {};
  for (const pair of config.env) {
    const eq = pair.indexOf('=');
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  env[WORKER_OPTIONS_ENV] = JSON.stringify(opts);
  return env;
}

/** The worker's instance index, under pm2's name (instance_var, NODE_APP_INSTANCE by default) and superv's own. */
export function instanceEnv(config: Pick<Config, 'instanceVar'>, index: number): Record<string, string> {
  return { [config.instanceVar]: String(index), SUPERV_WORKER_INDEX: String(index) };
}

/**
 * Throws a configuration error when a worker's environment (superv's own plus `env`) is too large for execve:
 * otherwise every fork fails with E2BIG, which surfaced as an internal error with a stack.
 */
export function checkWorkerEnv(config: Config, base: NodeJS.ProcessEnv = process.env): void {
  const all: Record<string, string | undefined> = { ...base, ...workerOptionsEnv(config, 0) };
  let total = 0;
  for (const [k, v] of Object.entries(all)) {
    if (v === undefined) continue;
    const bytes = Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
    if (bytes > MAX_ENV_STRING) {
      throw new SupervError('SUPERV_ERR_BAD_VALUE', 'env', `the variable ${k.slice(0, 64)} is ${bytes} bytes; a single variable may have at most ${MAX_ENV_STRING} (Linux's MAX_ARG_STRLEN)`);
    }
    total += bytes + 8;
  }
  for (const a of [...config.args, ...config.nodeArgs]) total += Buffer.byteLength(a) + 9;
  if (total > MAX_ENV_TOTAL) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'env', `the workers' environment and arguments take ${total} bytes; superv allows ${MAX_ENV_TOTAL} (execve refuses more with E2BIG)`);
  }
}
