// The one table of superv's settings, declared once the way gunicorn's config.py does it.
// The CLI parser, env and YAML loading, validation, `superv --help` and the README's settings table
// are all generated from SETTINGS. Flag, env var and YAML key are derived from the key, so they
// cannot drift apart: `gracefulTimeout` is `--graceful-timeout`, `SUPERV_GRACEFUL_TIMEOUT`, `graceful_timeout`.

import { cpuBudget } from './cpu-budget';

export type Kind =
  | { type: 'string' }
  | { type: 'path' }
  | { type: 'int'; min: number; max?: number }
  | { type: 'workers' }            // an int >= 1, or `max` = available CPUs
  | { type: 'duration'; min?: number; max?: number; zeroIsOff?: boolean }  // milliseconds, at most MAX_DURATION_MS
  | { type: 'size'; min?: number; zeroIsOff?: boolean }                     // bytes
  | { type: 'bool' }
  | { type: 'list' }                // CLI/env: split on white space; YAML: a list of strings
  | { type: 'routes' }              // a list of route patterns (src/util/route-pattern.ts), each checked at start
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
  workerKind: string;
  waitReady: boolean;
  instanceVar: string;
  listenTimeout: number;
  holdTimeout: number;
  gracefulTimeout: number;
  minUptime: number;
  backoffMax: number;
  timeout: number;
  dumpTimeout: number;
  slow: number;
  slowExempt: string[];
  heapWarn: number;
  crashLocals: boolean;
  poisonKills: number;
  poisonWindow: number;
  quarantine: boolean;
  quarantineTime: number;
  dumpDir: string;
  dumpKeep: number;
  heartbeatInterval: number;
  cpuSampleInterval: number;
  instrument: boolean;
  recordSqlValues: boolean;
  lockLookup: boolean;
  logLevel: string;
  logFormat: string;
  maxRequests: number;
  maxRequestsJitter: number;
  maxMemory: number;
  runDir: string;
  metricsPort: number;
  metricsHost: string;
  onDump: string;
  traceUrl: string;
  hookTimeout: number;
  hookConcurrency: number;
  daemon: boolean;
  pidFile: string;
  logFile: string;
  logMaxSize: number;
  logKeep: number;
}

/**
 * The longest duration any setting accepts: Node's timers take at most 2^31-1 ms (about 24.8 days) and turn a
 * longer delay into 1 ms, which made a too-long hook_timeout kill hooks at once and a too-long heartbeat spin.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** The most workers one supervisor keeps (`workers`, `superv scale`). */
export const MAX_WORKERS = 1024;

/**
 * The smallest max_memory: a Node worker with superv's bootstrap and watchdog thread starts near 50 MiB of RSS,
 * so a lower limit would recycle every worker as soon as it boots.
 */
export const MIN_MAX_MEMORY = 64 * 2 ** 20;

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
  /** The flag a pm2 user types for it, accepted as an alias (`-i 4` for `--workers 4`). */
  pm2Flag?: string;
  /** How the README shows a default that is computed at start. */
  computed?: string;
  /** Read once, by the master at start: a reload reports a change and keeps the running value. */
  startOnly?: true;
}

export const SETTINGS: { readonly [K in keyof Config]: Setting } = {
  app: {
    kind: { type: 'path' }, default: '', section: 'app',
    doc: 'The app to run in every worker: a .js, .cjs, .mjs (or .ts, .cts, .mts) file, a script with a node shebang (`node_modules/next/dist/bin/next`), ' +
      'or a package binary name found in node_modules/.bin (`next`). On the CLI it is the argument after `start`.',
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
    kind: { type: 'string' }, default: '', section: 'app', startOnly: true, computed: 'the app file\'s base name',
    doc: 'Names this supervisor in logs, dumps and control commands.',
  },
  workers: {
    kind: { type: 'workers' }, default: 'max', section: 'workers', short: '-w', pm2Flag: '-i',
    doc: 'How many worker processes to keep running: a number, or `max` for the CPUs this process may use ' +
      '(its CPU affinity and the cgroup CPU quota of its container, rounded to the nearest whole CPU, at least 1).',
  },
  nodeArgs: {
    kind: { type: 'list' }, default: [], section: 'workers',
    doc: 'Node flags for every worker, e.g. `--enable-source-maps` or `--import tsx`.',
  },
  workerKind: {
    kind: { type: 'enum', choices: ['http', 'background'] }, default: 'http', section: 'workers',
    doc: '`http`: a worker is ready when it listens. `background`: for workers that serve no HTTP (queue consumers, ' +
      'cron runners): ready once the app has loaded; supervised, recycled, reloaded and dumped like the others.',
  },
  waitReady: {
    kind: { type: 'bool' }, default: false, section: 'workers',
    doc: 'A worker is ready only when the app calls `process.send(\'ready\')` (as under pm2\'s wait_ready), not at its first listen ' +
      'or load: for apps with several servers, or that warm up first. Bounded by listen_timeout.',
  },
  instanceVar: {
    kind: { type: 'string' }, default: 'NODE_APP_INSTANCE', section: 'workers',
    doc: 'The env var that gives each worker its stable index 0..N-1 (a replacement keeps its predecessor\'s), ' +
      'as pm2 does; SUPERV_WORKER_INDEX is set too.',
  },
  listenTimeout: {
    kind: { type: 'duration', min: 100, zeroIsOff: true }, default: '30s', section: 'workers',
    doc: 'A booting worker that is not ready within this (it did not listen, or, with wait_ready, did not send ready) is killed; ' +
      'on the first start superv then halts. 0 = wait forever.',
  },
  holdTimeout: {
    kind: { type: 'duration', min: 100, zeroIsOff: true }, default: '30s', section: 'workers',
    doc: 'While no worker can take new connections (all stuck, killed, crashing or recycled at once), the master keeps ' +
      'the port open and they wait up to this long for a replacement; then the port closes until a worker listens again, ' +
      'so a load balancer sees the host down. 0 = off: the port closes with the last worker, as in plain node:cluster.',
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
    kind: { type: 'size', min: MIN_MAX_MEMORY, zeroIsOff: true }, default: 0, section: 'workers',
    doc: 'A worker whose RSS exceeds this (checked every heartbeat) is dumped (reason memory), then recycled gracefully; recycles of workers younger than min_uptime back off like crashes. At least 64M; 0 = off.',
  },
  timeout: {
    kind: { type: 'duration', min: 100, zeroIsOff: true }, default: '30s', section: 'forensics',
    doc: 'A worker whose event loop is blocked this long is dumped, then killed and replaced. 0 = off. ' +
      'A booting worker (loading the app is synchronous) may block at least 10s, and is dumped by half of listen_timeout.',
  },
  dumpTimeout: {
    kind: { type: 'duration', min: 100 }, default: '5s', section: 'forensics',
    doc: 'How long the dump before a kill may take; the kill happens when it ends, dump or no dump.',
  },
  slow: {
    kind: { type: 'duration', min: 100, zeroIsOff: true }, default: '10s', section: 'forensics',
    doc: 'A request running longer than this gets one dump; its worker is not killed. 0 = off. A streaming response ' +
      '(SSE, chunked) counts from its last body write: one that keeps writing is never slow, one that stalls is.',
  },
  slowExempt: {
    kind: { type: 'routes' }, default: [], section: 'forensics',
    doc: 'Route patterns never dumped as slow (long-polls, streams): paths where `*` matches within a segment and ' +
      '`**` across segments, e.g. `/poll /events/*`. The query string is ignored.',
  },
  heapWarn: {
    kind: { type: 'int', min: 0, max: 100 }, default: 90, section: 'forensics',
    doc: 'When a worker\'s V8 heap reaches this percentage of its old-space limit (--max-old-space-size, else heap_size_limit), ' +
      'it gets one memory dump while still alive: the allocating stack, requests in flight, heap by space. ' +
      'If it then runs out of memory, its crash dump links to it. 0 = off.',
  },
  crashLocals: {
    kind: { type: 'bool' }, default: false, section: 'forensics',
    doc: 'Crash dumps get the locals of the frame that threw an uncaught exception (the watchdog pauses on it). ' +
      'Off by default: it keeps the inspector\'s Debugger on, which makes every throw, caught ones too, 2–6× slower.',
  },
  poisonKills: {
    kind: { type: 'int', min: 0 }, default: 3, section: 'forensics',
    doc: 'A route whose requests got this many workers killed within `poison_window` is a poison route: one error line ' +
      'names it and its dumps, `superv status` and `ls` flag it, and metrics count it. 0 = off.',
  },
  poisonWindow: {
    kind: { type: 'duration', min: 1000 }, default: '10m', section: 'forensics',
    doc: 'The window in which `poison_kills` kills make a route a poison route.',
  },
  quarantine: {
    kind: { type: 'bool' }, default: false, section: 'forensics',
    doc: 'Quarantine poison routes: workers answer them at once with 503 and Retry-After for `quarantine_time`, ' +
      'without running the app\'s handler; then each worker lets one request through, and the next kill quarantines the route again.',
  },
  quarantineTime: {
    kind: { type: 'duration', min: 1000 }, default: '1m', section: 'forensics',
    doc: 'How long a poison route stays quarantined before a request of it is let through again.',
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
  cpuSampleInterval: {
    kind: { type: 'duration', min: 1, max: 10_000, zeroIsOff: true }, default: '50ms', section: 'forensics',
    doc: 'Mean time between CPU samples of each serving worker (jittered ±50 %), attributed to the route of the request ' +
      'that was running, or to idle / no request: `superv report`\'s CPU tables, `superv_route_cpu_seconds_total`, the ' +
      'hottest functions in a timeout dump (docs/cpu.md). Lower is finer and costs more. 0 = off.',
  },
  instrument: {
    kind: { type: 'bool' }, default: true, section: 'forensics',
    doc: 'Track pg, postgres.js, mysql2 and mariadb statements and transactions, and outbound http/fetch calls, for dumps (`--no-instrument` turns it off).',
  },
  recordSqlValues: {
    kind: { type: 'bool' }, default: false, section: 'forensics',
    doc: 'Also record the bound values of SQL statements in dumps. Off: they are often personal data.',
  },
  lockLookup: {
    kind: { type: 'bool' }, default: true, section: 'forensics',
    doc: 'When a dump finds a statement waiting, ask the database (on a new side connection with the app\'s settings, 500 ms at most) who holds the lock it waits for (`--no-lock-lookup` turns it off). See docs/dumps.md for the privileges it needs.',
  },
  runDir: {
    kind: { type: 'path' }, default: '', section: 'operations', startOnly: true, computed: '$XDG_RUNTIME_DIR/superv, else /tmp/superv-UID',
    doc: 'The 0700 directory of control sockets (0600, one per --name) and pid files.',
  },
  metricsPort: {
    kind: { type: 'int', min: 0, max: 65535 }, default: 0, section: 'operations', startOnly: true,
    doc: 'Serve Prometheus /metrics and /healthz on this port. 0 = off: superv opens no port unless asked.',
  },
  metricsHost: {
    kind: { type: 'string' }, default: '127.0.0.1', section: 'operations', startOnly: true,
    doc: 'The address the metrics port binds; loopback unless you say otherwise.',
  },
  onDump: {
    kind: { type: 'string' }, default: '', section: 'operations',
    doc: 'A shell command run after each dump, with its path in "$1" and $SUPERV_DUMP_FILE (to ship it somewhere).',
  },
  traceUrl: {
    kind: { type: 'string' }, default: '', section: 'forensics',
    doc: 'A link template into your tracing system, e.g. `https://traces.example/trace/{trace_id}` (`{span_id}` too): ' +
      'dumps record it, and `superv dumps show` and the HTML report turn each request\'s trace id into that link.',
  },
  hookTimeout: {
    kind: { type: 'duration', min: 100 }, default: '30s', section: 'operations',
    doc: 'A hook still running after this is killed with its whole process group; its failure is logged and changes nothing else.',
  },
  hookConcurrency: {
    kind: { type: 'int', min: 1, max: 64 }, default: 2, section: 'operations',
    doc: 'How many hooks may run at once; more wait their turn (at most 100 waiting, then the newest are dropped with a log line).',
  },
  daemon: {
    kind: { type: 'bool' }, default: false, section: 'operations', startOnly: true,
    doc: 'Detach into the background with a pid file and a log file. Foreground is the default (systemd, Docker, Kubernetes).',
  },
  pidFile: {
    kind: { type: 'path' }, default: '', section: 'operations', startOnly: true, computed: 'RUN_DIR/NAME.pid',
    doc: 'Where the master writes its pid.',
  },
  logFile: {
    kind: { type: 'path' }, default: '', section: 'operations', startOnly: true, computed: 'NAME.log in the current directory, with --daemon',
    doc: 'With --daemon, where the master\'s and the workers\' output goes.',
  },
  logMaxSize: {
    kind: { type: 'size', min: 2 ** 20, zeroIsOff: true }, default: '50M', section: 'logging', startOnly: true,
    doc: 'With --daemon, the log file is rotated when a line would take it past this size: NAME.log becomes NAME.log.1 and so on, no line lost, split or repeated. 0 = off (an outside logrotate renames it and sends SIGUSR1, which reopens it).',
  },
  logKeep: {
    kind: { type: 'int', min: 1, max: 1000 }, default: 5, section: 'logging', startOnly: true,
    doc: 'How many rotated log files (NAME.log.1 … NAME.log.N) to keep; the oldest is removed, so the log never fills the disk.',
  },
  logLevel: {
    kind: { type: 'enum', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] },
    default: 'info', section: 'logging', startOnly: true, doc: 'The master\'s log level.',
  },
  logFormat: {
    kind: { type: 'enum', choices: ['auto', 'json', 'pretty'] }, default: 'auto', section: 'logging', startOnly: true,
    doc: 'The master\'s log lines: JSON, or pretty and colored; `auto` = pretty on a TTY.',
  },
};

/** SUPERV_* variables that are superv's own plumbing, not settings: never rejected as unknown. */
export const INTERNAL_ENV = new Set(['SUPERV_WORKER_INDEX', 'SUPERV_DAEMON_CHILD', 'SUPERV_REAPED', 'SUPERV_WORKER_OPTIONS', 'SUPERV_DUMP_FILE', 'SUPERV_DUMP_REASON']);

export const SETTING_KEYS = Object.keys(SETTINGS) as Array<keyof Config>;

/**
 * pm2 flags whose superv name differs, for the message that refuses them: a did-you-mean by spelling would
 * point `--kill-timeout` at `--dump-timeout`, which is not what pm2's kill_timeout means.
 */
export const PM2_FLAGS: Readonly<Record<string, keyof Config>> = {
  '--kill-timeout': 'gracefulTimeout',
  '--max-memory-restart': 'maxMemory',
  '--instances': 'workers',
  '--interpreter-args': 'nodeArgs',
};

export function flagOf(key: keyof Config): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
export function envOf(key: keyof Config): string {
  return 'SUPERV_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}
export function yamlOf(key: keyof Config): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** What `workers: max` is: the CPUs this process may use (cpu-budget.ts). */
export function availableCpus(): number {
  return cpuBudget().cpus;
}
