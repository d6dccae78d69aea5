// The one table of superv's settings, declared once the way gunicorn's config.py does it.
// The CLI parser, env and YAML loading, validation, `superv --help` and the README's settings table
// are all generated from SETTINGS. Flag, env var and YAML key are derived from the key, so they
// cannot drift apart: `gracefulTimeout` is `--graceful-timeout`, `SUPERV_GRACEFUL_TIMEOUT`, `graceful_timeout`.

import { cpus } from 'node:os';

export type Kind =
  | { type: 'string' }
  | { type: 'path' }
  | { type: 'int'; min: number; max?: number }
  | { type: 'workers' }            // an int >= 1, or `max` = available CPUs
  | { type: 'duration'; min?: number; zeroIsOff?: boolean }  // milliseconds
  | { type: 'size' }                // bytes
  | { type: 'bool' }
  | { type: 'list' }                // CLI/env: split on white space; YAML: a list of strings
  | { type: 'enum'; choices: readonly string[] };

/** The resolved settings of one supervisor. Durations in ms, sizes in bytes. */
export interface Config {
  app: string;
  args: string[];
  env: string[];
  config: string;
  name: string;
  workers: number;
  nodeArgs: string[];
  listenTimeout: number;
  gracefulTimeout: number;
  minUptime: number;
  backoffMax: number;
  timeout: number;
  dumpTimeout: number;
  slow: number;
  dumpDir: string;
  dumpKeep: number;
  heartbeatInterval: number;
  instrument: boolean;
  recordSqlValues: boolean;
  logLevel: string;
  logFormat: string;
  maxRequests: number;
  maxRequestsJitter: number;
  maxMemory: number;
  runDir: string;
  metricsPort: number;
  metricsHost: string;
  onDump: string;
  hookTimeout: number;
  daemon: boolean;
  pidFile: string;
  logFile: string;
}

export interface Setting {
  kind: Kind;
  /** The default, in the form a user would write it; `undefined` when it is computed (see `computed`). */
  default: string | number | boolean | string[];
  section: 'app' | 'workers' | 'forensics' | 'operations' | 'logging';
  doc: string;
  /** Where the value cannot come from: the config file cannot name itself. */
  notIn?: ReadonlyArray<'yaml' | 'env'>;
  /** A CLI short alias, e.g. `-w`. */
  short?: string;
  /** How the README shows a default that is computed at start. */
  computed?: string;
}

export const SETTINGS: { readonly [K in keyof Config]: Setting } = {
  app: {
    kind: { type: 'path' }, default: '', section: 'app',
    doc: 'The app to run in every worker (.js, .cjs or .mjs). On the CLI it is the argument after `start`.',
  },
  args: {
    kind: { type: 'list' }, default: [], section: 'app',
    doc: 'Arguments passed to the app (`process.argv.slice(2)`). On the CLI: everything after `--`.',
  },
  env: {
    kind: { type: 'list' }, default: [], section: 'app',
    doc: 'Extra `KEY=VALUE` variables for the workers, on top of superv\'s own environment.',
  },
  config: {
    kind: { type: 'path' }, default: '', section: 'app', notIn: ['yaml'], short: '-c',
    doc: 'A YAML file of settings. Precedence: flag > env > file > default.',
  },
  name: {
    kind: { type: 'string' }, default: '', section: 'app', computed: 'the app file\'s base name',
    doc: 'Names this supervisor in logs, dumps and control commands.',
  },
  workers: {
    kind: { type: 'workers' }, default: 'max', section: 'workers', short: '-w',
    doc: 'How many worker processes to keep running: a number, or `max` for the available CPUs.',
  },
  nodeArgs: {
    kind: { type: 'list' }, default: [], section: 'workers',
    doc: 'Node flags for every worker, e.g. `--enable-source-maps` or `--import tsx`.',
  },
  listenTimeout: {
    kind: { type: 'duration', min: 100 }, default: '30s', section: 'workers',
    doc: 'A booting worker that does not listen within this is killed; on the first start superv then halts.',
  },
  gracefulTimeout: {
    kind: { type: 'duration' }, default: '30s', section: 'workers',
    doc: 'On a graceful stop, how long in-flight requests may take before their worker is killed.',
  },
  minUptime: {
    kind: { type: 'duration' }, default: '5s', section: 'workers',
    doc: 'A worker that exits sooner counts as a crash: replacements back off exponentially until one lives this long.',
  },
  backoffMax: {
    kind: { type: 'duration', min: 100 }, default: '30s', section: 'workers',
    doc: 'The longest wait between replacements of crashing workers.',
  },
  maxRequests: {
    kind: { type: 'int', min: 0 }, default: 0, section: 'workers',
    doc: 'Recycle a worker gracefully (its replacement first) after this many requests. 0 = never.',
  },
  maxRequestsJitter: {
    kind: { type: 'int', min: 0 }, default: 0, section: 'workers',
    doc: 'Adds a random 0..N to each worker\'s max_requests so workers do not all recycle at once.',
  },
  maxMemory: {
    kind: { type: 'size' }, default: 0, section: 'workers',
    doc: 'A worker whose RSS exceeds this (checked every heartbeat) is dumped (reason memory), then recycled gracefully. 0 = off.',
  },
  timeout: {
    kind: { type: 'duration', min: 100, zeroIsOff: true }, default: '30s', section: 'forensics',
    doc: 'A worker whose event loop is blocked this long is dumped, then killed and replaced. 0 = off.',
  },
  dumpTimeout: {
    kind: { type: 'duration', min: 100 }, default: '5s', section: 'forensics',
    doc: 'How long the dump before a kill may take; the kill happens when it ends, dump or no dump.',
  },
  slow: {
    kind: { type: 'duration', min: 100, zeroIsOff: true }, default: '10s', section: 'forensics',
    doc: 'A request running longer than this gets one dump; its worker is not killed. 0 = off.',
  },
  dumpDir: {
    kind: { type: 'path' }, default: './superv-dumps', section: 'forensics',
    doc: 'Where dumps are written: one 0600 JSON file per incident, in a 0700 directory.',
  },
  dumpKeep: {
    kind: { type: 'int', min: 1 }, default: 200, section: 'forensics',
    doc: 'How many dump files to keep; the oldest are removed, so a crash loop cannot fill the disk.',
  },
  heartbeatInterval: {
    kind: { type: 'duration', min: 50 }, default: '1s', section: 'forensics',
    doc: 'How often a worker reports its in-flight requests, counters, memory and event-loop delay.',
  },
  instrument: {
    kind: { type: 'bool' }, default: true, section: 'forensics',
    doc: 'Track pg and mysql2 statements and transactions, and outbound http/fetch calls, for dumps (`--no-instrument` turns it off).',
  },
  recordSqlValues: {
    kind: { type: 'bool' }, default: false, section: 'forensics',
    doc: 'Also record the bound values of SQL statements in dumps. Off: they are often personal data.',
  },
  runDir: {
    kind: { type: 'path' }, default: '', section: 'operations', computed: '$XDG_RUNTIME_DIR/superv, else /tmp/superv-UID',
    doc: 'The 0700 directory of control sockets (0600, one per --name) and pid files.',
  },
  metricsPort: {
    kind: { type: 'int', min: 0, max: 65535 }, default: 0, section: 'operations',
    doc: 'Serve Prometheus /metrics and /healthz on this port. 0 = off: superv opens no port unless asked.',
  },
  metricsHost: {
    kind: { type: 'string' }, default: '127.0.0.1', section: 'operations',
    doc: 'The address the metrics port binds; loopback unless you say otherwise.',
  },
  onDump: {
    kind: { type: 'string' }, default: '', section: 'operations',
    doc: 'A shell command run after each dump, with its path in "$1" and $SUPERV_DUMP_FILE (to ship it somewhere).',
  },
  hookTimeout: {
    kind: { type: 'duration', min: 100 }, default: '30s', section: 'operations',
    doc: 'A hook still running after this is killed; its failure is logged and changes nothing else.',
  },
  daemon: {
    kind: { type: 'bool' }, default: false, section: 'operations',
    doc: 'Detach into the background with a pid file and a log file. Foreground is the default (systemd, Docker, Kubernetes).',
  },
  pidFile: {
    kind: { type: 'path' }, default: '', section: 'operations', computed: 'RUN_DIR/NAME.pid',
    doc: 'Where the master writes its pid.',
  },
  logFile: {
    kind: { type: 'path' }, default: '', section: 'operations', computed: 'NAME.log in the current directory, with --daemon',
    doc: 'With --daemon, where the master\'s and the workers\' output goes.',
  },
  logLevel: {
    kind: { type: 'enum', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
    default: 'info', section: 'logging', doc: 'The master\'s log level.',
  },
  logFormat: {
    kind: { type: 'enum', choices: ['auto', 'json', 'pretty'] }, default: 'auto', section: 'logging',
    doc: 'The master\'s log lines: JSON, or pretty and colored; `auto` = pretty on a TTY.',
  },
};

/** SUPERV_* variables that are superv's own plumbing, not settings: never rejected as unknown. */
export const INTERNAL_ENV = new Set(['SUPERV_DAEMON_CHILD', 'SUPERV_REAPED', 'SUPERV_WORKER_OPTIONS', 'SUPERV_DUMP_FILE', 'SUPERV_DUMP_REASON']);

export const SETTING_KEYS = Object.keys(SETTINGS) as Array<keyof Config>;

export function flagOf(key: keyof Config): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
export function envOf(key: keyof Config): string {
  return 'SUPERV_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}
export function yamlOf(key: keyof Config): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

export function availableCpus(): number {
  return Math.max(1, cpus().length);
}
