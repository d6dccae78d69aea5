// Every subcommand, declared once: its usage line, what it does, its options, and how to load it. `superv
// --help`, `superv CMD --help` and the dispatch in cli.ts all come from this table, so a command cannot exist
// without help, nor help without a command. Runners load only when their command runs: a master's RSS carries
// every module it ever loaded, and `superv status` need not load the report code.

export interface CommandOption {
  flag: string;
  doc: string;
}

export interface Command {
  /** The usage line(s) after `superv `. */
  usage: string[];
  summary: string;
  /** The summary's first words, for `superv --help`'s list. */
  brief: string;
  options: CommandOption[];
  /** Resolves with the exit code. `start` is special-cased in cli.ts (it parses the settings table). */
  run: (argv: string[]) => Promise<number>;
}

const RUN_DIR: CommandOption = { flag: '--run-dir DIR', doc: 'where control sockets live (default $SUPERV_RUN_DIR, $XDG_RUNTIME_DIR/superv or /tmp/superv-UID)' };
const TIMEOUT: CommandOption = { flag: '--timeout DURATION', doc: "how long to wait for the master's reply (default 15s; reload 10m, dump 60s)" };
const JSON_OUT: CommandOption = { flag: '--json', doc: 'machine-readable output' };
const DUMP_DIR: CommandOption = {
  flag: '--dir DIR',
  doc: "read dumps from DIR (default: the running supervisor NAME's dump dir, else $SUPERV_DUMP_DIR, else ./superv-dumps);\n" +
    "                   give it several times, or a quoted glob ('hosts/*/superv-dumps'), to merge many hosts' dumps:\n" +
    '                   identical files count once, a dir that cannot be read is named in a warning',
};
const TRACE_URL: CommandOption = { flag: '--trace-url URL', doc: 'link trace ids with this template, e.g. https://traces.example/trace/{trace_id} (default: the trace_url the dump was written with)' };

const control = (cmd: string) => (argv: string[]): Promise<number> =>
  (require('./control') as typeof import('./control')).runControlCommand(cmd, argv);

export const COMMANDS: Readonly<Record<string, Command>> = {
  start: {
    usage: ['start APP [options] [-- app args]'],
    summary: 'run APP in N cluster workers (every option: superv --help, or README "Settings")', brief: 'run APP in N cluster workers',
    options: [],
    run: () => Promise.reject(new Error('start is dispatched by cli.ts')),
  },
  ls: { usage: ['ls [--json]'], summary: 'list running supervisors', brief: 'list running supervisors', options: [JSON_OUT, RUN_DIR, TIMEOUT], run: control('ls') },
  status: {
    usage: ['status [NAME] [--json]'], summary: 'workers, requests in flight, CPU, RSS, last dump', brief: 'workers, requests in flight, CPU, RSS, last dump',
    options: [JSON_OUT, RUN_DIR, TIMEOUT], run: control('status'),
  },
  reload: {
    usage: ['reload [NAME]'], summary: 'zero-downtime rolling reload (config and app code)', brief: 'zero-downtime rolling reload',
    options: [JSON_OUT, RUN_DIR, TIMEOUT], run: control('reload'),
  },
  scale: {
    usage: ['scale NAME N|+N|-N'], summary: 'change the number of workers', brief: 'change the number of workers', options: [JSON_OUT, RUN_DIR, TIMEOUT], run: control('scale'),
  },
  stop: {
    usage: ['stop [NAME] [--no-wait]'], summary: 'graceful stop; returns once the master has exited (--no-wait: at once)', brief: 'graceful stop',
    options: [{ flag: '--no-wait', doc: 'return once the master has begun to stop, without waiting for its exit' }, JSON_OUT, RUN_DIR, TIMEOUT], run: control('stop'),
  },
  dump: {
    usage: ['dump NAME [WORKER]'], summary: 'dump a worker now (works on a blocked one)', brief: 'dump a worker now', options: [JSON_OUT, RUN_DIR, TIMEOUT], run: control('dump'),
  },
  profile: {
    usage: ['profile NAME [WORKER] [--duration 10s] [--out FILE] [--format cpuprofile|pprof]'],
    summary: 'a V8 CPU profile of one worker (or of each, FILE-wN) while it serves traffic, sampled every 1 ms, written by\n' +
      "the worker's watchdog over its private pipe (no port is opened), 0600. Open a .cpuprofile in Chrome DevTools\n" +
      '(Performance) or speedscope; --format pprof writes gzipped pprof for Pyroscope, Grafana or go tool pprof.',
    brief: 'CPU profile of a worker, on demand',
    options: [{ flag: '--duration D', doc: 'how long to profile (default 10s, at most 10m)' },
      { flag: '--out FILE', doc: 'where to write (default ./NAME-TIME.cpuprofile)' },
      { flag: '--format F', doc: 'cpuprofile (default) or pprof' }, JSON_OUT, RUN_DIR],
    run: (argv) => (require('./profile') as typeof import('./profile')).runProfile(argv),
  },
  'heap-snapshot': {
    usage: ['heap-snapshot NAME WORKER [--out FILE]'],
    summary: "a V8 heap snapshot of a worker, written by its watchdog over its private pipe (no port is opened), 0600.\n" +
      'The worker pauses while the snapshot is taken (about a second per 100 MB of heap); superv does not take that\n' +
      'pause for a stall. Open it in Chrome DevTools (Memory).',
    brief: 'heap snapshot of a worker, on demand',
    options: [{ flag: '--out FILE', doc: 'where to write (default ./NAME-wWORKER-TIME.heapsnapshot)' }, JSON_OUT, RUN_DIR],
    run: (argv) => (require('./profile') as typeof import('./profile')).runHeapSnapshot(argv),
  },
  dumps: {
    usage: ['dumps [NAME] [--dir DIR]... [--json]', 'dumps show FILE|latest [NAME] [--dir DIR]... [--all] [--json] [--trace-url URL]'],
    summary: 'dumps: one line per dump, oldest first (time, host, reason, route, worker, trace id, where it was caught).\n' +
      'dumps show: one dump explained: request, source line, stack, locals, DB state, /proc.\n' +
      "NAME keeps only that supervisor's dumps. --json prints machine-readable output (show: the dump file itself).", brief: 'list dumps, or explain one',
    options: [DUMP_DIR, { flag: '--all', doc: 'show: locals of node internals too' }, TRACE_URL, JSON_OUT, RUN_DIR],
    run: (argv) => (require('./dumps') as typeof import('./dumps')).runDumps(argv),
  },
  logs: {
    usage: ['logs [NAME] [--lines N] [-f|--follow] [--worker N] [--json]'],
    summary: "a daemonised supervisor's log: the master's records and its workers' output, each line prefixed with its\n" +
      'source (master, w3, hook; w3! is stderr), oldest first, reaching into rotated files. -f follows new lines\n' +
      'across worker restarts, rotations and reopens until Ctrl-C. --json prints the lines as they are in the file.',
    brief: "a daemon's log, with -f to follow",
    options: [
      { flag: '--lines N', doc: 'how many lines to show first (default 15; -n N too)' },
      { flag: '-f, --follow', doc: 'keep printing new lines' },
      { flag: '--worker N', doc: "only worker N's output and the master's lines about it" },
      JSON_OUT,
      { flag: '--file FILE', doc: 'read this log file instead of asking the running master for its own' },
      RUN_DIR,
    ],
    run: (argv) => (require('./logs') as typeof import('./logs')).runLogs(argv),
  },
  top: {
    usage: ['top [NAME] [--once]'],
    summary: 'a live view refreshed every second: per worker pid, state, CPU %, RSS, requests/s, in flight, event-loop\n' +
      "delay and the oldest request's route and age; then the last dumps. q or Ctrl-C quits. It needs a terminal;\n" +
      '--once prints one snapshot (two samples a second apart, for requests/s) anywhere.',
    brief: 'a live view of the workers',
    options: [{ flag: '--once', doc: 'print one snapshot and exit (works without a terminal)' }, RUN_DIR],
    run: (argv) => (require('./top') as typeof import('./top')).runTop(argv),
  },
  startup: {
    usage: ['startup systemd [NAME] [--user] [--install]', 'startup systemd [--user] [--install] -- start APP [options]'],
    summary: "a systemd unit for how supervisor NAME runs now (asked of its master: absolute node and superv paths, its\n" +
      'arguments without --daemon, its directory and run dir), or for the start command line after --: an optional\n' +
      'environment file, KillMode=mixed, TimeoutStopSec past graceful_timeout, Restart=on-failure, reload = HUP.\n' +
      'Printed; --install writes it (/etc/systemd/system, or ~/.config/systemd/user with --user), checks it with\n' +
      'systemd-analyze verify where installed, and enables it. Kubernetes: README "Running at boot".',
    brief: 'a systemd unit for this supervisor',
    options: [
      { flag: '--user', doc: "a user unit (systemctl --user), for the user's own manager" },
      { flag: '--install', doc: 'write, verify and enable it instead of printing it' },
      { flag: '--unit-dir DIR', doc: 'with --install: write it here instead, and do not enable it' },
      RUN_DIR,
    ],
    run: (argv) => (require('./startup') as typeof import('./startup')).runStartup(argv),
  },
  report: {
    usage: ['report [NAME] [--dir DIR]... [--html FILE] [--json] [--trace-url URL]'],
    summary: 'routes ranked by the time they consume: requests, p50/p95/p99 (estimated from histograms), max, slow and\n' +
      'killed requests, and where the dumps caught them. --html FILE writes a self-contained page with a latency chart\n' +
      'per route, a timeline of kills and slow requests, and every dump.', brief: 'routes ranked by time consumed',
    options: [DUMP_DIR, { flag: '--html FILE', doc: 'also write a self-contained HTML page (0600)' }, TRACE_URL, JSON_OUT, RUN_DIR],
    run: (argv) => (require('./report') as typeof import('./report')).runReport(argv),
  },
};

/**
 * pm2 commands superv does under another name: `superv restart` says which instead of only "unknown".
 * (pm2 restart kills every worker at once; superv's reload replaces them one at a time with no lost request.)
 */
export const PM2_COMMANDS: Readonly<Record<string, string>> = {
  restart: 'use `superv reload NAME` (a rolling restart: no request lost)',
  list: 'use `superv ls`',
  monit: 'use `superv top NAME`',
  delete: 'use `superv stop NAME` (a stopped supervisor leaves nothing behind to delete)',
  startOrReload: 'use `superv reload NAME`, or `superv start` if it is not running',
  kill: 'use `superv stop NAME` for each supervisor',
};

/** `superv CMD --help`. */
export function commandHelp(name: string, cmd: Command): string {
  const lines = [...cmd.usage.map((u, i) => `${i === 0 ? 'Usage:' : '      '} superv ${u}`), '', cmd.summary];
  if (cmd.options.length > 0) {
    lines.push('', 'Options:');
    for (const o of cmd.options) lines.push(`  ${o.flag.padEnd(16)} ${o.doc}`);
  }
  if (name === 'start') lines.push('', 'Run `superv --help` for every setting of start.');
  return lines.join('\n') + '\n';
}

/** The command lines of `superv --help`. */
export function commandSummaries(): string[] {
  const out: string[] = [];
  for (const cmd of Object.values(COMMANDS)) {
    for (const u of cmd.usage) out.push(`  superv ${u}`);
    out.push(`      ${cmd.brief}`);
  }
  return out;
}
