// What a worker is started with: the bootstrap file that runs before the app, and its options, passed in
// one env var that the bootstrap removes before the app loads (so the app's own children never see it).

import { join } from 'node:path';
import type { Config } from '../config/settings';
import { WORKER_OPTIONS_ENV, type WorkerOptions } from '../protocol';


export function workerBootstrapPath(): string {
  return join(__dirname, '..', 'worker', 'bootstrap.js');
}

export function workerOptionsEnv(config: Config, masterPid: number): Record<string, string> {
  const opts: WorkerOptions = {
    app: config.app,
    name: config.name,
    masterPid,
    heartbeatInterval: config.heartbeatInterval,
    slow: config.slow,
    dumpTimeout: config.dumpTimeout,
    instrument: config.instrument,
    recordSqlValues: config.recordSqlValues,
  };
  const env: Record<string, string> = {};
  for (const pair of config.env) {
    const eq = pair.indexOf('=');
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  env[WORKER_OPTIONS_ENV] = JSON.stringify(opts);
  return env;
}
