// Runs first in every worker process, then loads the app unchanged: its own server.listen() shares the
// port through node:cluster. Before the app, it installs request tracking, the heartbeat, the drain,
// the SIGUSR2 trigger and the watchdog thread.

import { existsSync, fstatSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EXIT, IPC_CMD, WATCHDOG_FD, WORKER_OPTIONS_ENV, type MasterToWorker, type WorkerOptions, type WorkerToMaster } from '../protocol';
import { contextFromStart, enableRequestContext } from './context';
import { installInstrumentation } from './instrument';
import { Drainer, endWorker } from './drain';
import { parkedBeatEvery, startHeartbeat, tickLoopDelay } from './heartbeat';
import { Liveness, livenessBuffer } from './liveness';
import { crashLocalsPath } from '../dump/crash';
import { installCrashRecorder } from './crash';
import { installProbe } from './probe';
import { installCpuProbe } from './cpu-probe';
import { Quarantine } from './quarantine';
import { RequestTable } from './request-table';
import { publishHeapLimit, publishHeapUsed } from './heap-watch';
import { RequestTracker } from './tracker';
import type { WatchdogData } from './watchdog';
import { guarded } from './guard';

/** The watchdog thread's old-generation limit (see where the thread starts). */
const WATCHDOG_HEAP_MB = 128;

function readOptions(): WorkerOptions {
  const raw = process.env[WORKER_OPTIONS_ENV];
  if (!raw) {
    process.stderr.write('superv: the worker bootstrap runs only under `superv start`\n');
    process.exit(2);
  }
  // The app and the processes it spawns have no business with our internals.
  delete process.env[WORKER_OPTIONS_ENV];
  return JSON.parse(raw) as WorkerOptions;
}

/** Lets the watchdog disconnect its inspector session before the process ends (bounded: 100 ms). */
function exitHandshake(flags: Int32Array): void {
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
  Atomics.wait(flags, 1, 0, 100);
}

function hasFd(fd: number): boolean {
  try { fstatSync(fd); return true; } catch { return false; }
}

function send(msg: WorkerToMaster): void {
  if (process.connected && process.send) process.send(msg);
}

/** ESM apps (.mjs, or .js under "type": "module") are imported; CommonJS ones are required as main. */
function isEsm(file: string): boolean {
  if (/\.m[jt]s$/.test(file)) return true;
  if (/\.c[jt]s$/.test(file)) return false;
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try { return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type === 'module'; } catch { return false; }
    }
    if (dirname(dir) === dir) return false;
  }
}

type ModuleInternals = { _load(request: string, parent: null, isMain: boolean): unknown };

async function loadApp(file: string): Promise<void> {
  // The app sees itself as the main script, as under `node app.js`.
  process.argv = [process.argv[0]!, file, ...process.argv.slice(2)];
  if (isEsm(file)) await import(pathToFileURL(file).href);
  else (Module as unknown as ModuleInternals)._load(file, null, true);
}

function main(): void {
  const opts = readOptions();
  const table = RequestTable.create();
  const tracker = new RequestTracker(table);
  tracker.install();
  const drainer = new Drainer(tracker);
  drainer.install();
  const eld = tickLoopDelay();
  installCrashRecorder(tracker, { dir: opts.crashDir, ownPrefix: dirname(__dirname) + sep, loopDelay: () => eld.read() });
  installProbe(tracker, () => eld.read());
  if ((opts.cpuSampleInterval ?? 0) > 0) installCpuProbe(tracker);
  const livenessSab = livenessBuffer();
  const liveness = new Liveness(table, livenessSab, eld, () => tracker.served, () => tracker.inflight, opts.heartbeatInterval);
  liveness.start();
  const quarantine = new Quarantine();
  quarantine.install();
  startHeartbeat(tracker, opts.heartbeatInterval, eld, () => liveness.beat(), parkedBeatEvery(opts.heartbeatInterval, opts.timeout), () => quarantine.take());
  if (opts.instrument) {
    installInstrumentation({ recordValues: opts.recordSqlValues, esmApp: isEsm(opts.app), lockLookup: opts.lockLookup !== false });
    if (contextFromStart()) enableRequestContext();
  }
  // The heap warning reads the heap from shared memory while the loop runs (published at every liveness stamp:
  // every 50 ms while serving, when allocations happen; no wake-up of its own), and asks the inspector only
  // while the loop is blocked.
  if (opts.heapWarn > 0) {
    publishHeapLimit(table);
    liveness.onStamp = () => publishHeapUsed(table);
  }

  const exitFlags = new SharedArrayBuffer(8);
  const wd: WatchdogData = {
    exitFlags,
    liveness: livenessSab,
    sab: table.sab,
    fd: hasFd(WATCHDOG_FD) ? WATCHDOG_FD : null,
    masterPid: opts.masterPid,
    slowMs: opts.slow,
    slowExempt: opts.slowExempt ?? [],
    budgetMs: opts.dumpTimeout,
    heapWarn: opts.heapWarn / 100,
    cpuSampleMs: opts.cpuSampleInterval ?? 0,
    crashLocalsFile: opts.crashLocals && opts.crashDir !== '' ? crashLocalsPath(opts.crashDir, process.pid) : '',
  };
  const watchdog = new Worker(join(__dirname, 'watchdog.js'), {
    workerData: wd, stdout: false, stderr: false,
    // Any explicit heap limit makes V8 size this isolate for a small heap instead of from the machine's
    // RAM: 0.8 MiB less RSS per worker, measured. 128 MiB is far above what the largest capture needs.
    resourceLimits: { maxOldGenerationSizeMb: WATCHDOG_HEAP_MB },
  });
  watchdog.on('error', (err) => process.stderr.write(`superv: watchdog thread failed: ${err.stack ?? String(err)}\n`));
  watchdog.unref();
  process.on('exit', () => exitHandshake(new Int32Array(exitFlags)));

  // After the drain the app's own SIGTERM handlers run (drain.ts endWorker), unless a TERM already reached them.
  let appSignalled = false;
  const drain = () => drainer.start(() => endWorker(onTerm, appSignalled));
  process.on('message', guarded('the IPC handler', (m: MasterToWorker) => {
    if (m && m.cmd === IPC_CMD && m.act === 'drain') {
      send({ cmd: IPC_CMD, act: 'draining', inflight: tracker.inflight });
      drain();
    } else if (m && m.cmd === IPC_CMD && m.act === 'quarantine' && Array.isArray(m.routes)) {
      quarantine.set(m.routes);
    }
  }));
  // The master coordinates stops; a TERM to the whole group (systemd, docker stop) drains like it does,
  // and a terminal's Ctrl-C reaches the master, which drains us itself.
  const onTerm = guarded('the SIGTERM handler', () => { appSignalled = true; drain(); });
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', () => undefined);
  // The operator's trigger for a dump of a live worker: the master runs the one dump path for it.
  process.on('SIGUSR2', guarded('the SIGUSR2 handler', () => send({ cmd: IPC_CMD, act: 'dump-me', reason: 'manual' })));

  // A boot's block is timed from here, the app's own load: superv's set-up above is not the app's stall.
  table.tick(Date.now(), 0);
  loadApp(opts.app).then(() => send({ cmd: IPC_CMD, act: 'booted' }), (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(EXIT.APP_LOAD_ERROR);
  });
}

try {
  main();
} catch (err) {
  // A synchronous throw from a CommonJS app lands here.
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(EXIT.APP_LOAD_ERROR);
}
