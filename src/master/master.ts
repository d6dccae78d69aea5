// Assembles a running master: the control socket (claimed first, so a second master with the same name
// fails before forking anything), the arbiter, and the optional metrics port.

import { resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { Config } from '../config/settings';
import { SupervError } from '../errors';
import { defaultRunDir } from '../control/paths';
import { ControlServer } from '../control/server';
import { Arbiter } from './arbiter';
import { REAPED_ENV } from './pid1';
import { createOutputLoggers, type Logger, type LogOptions } from './logger';
import { HookRunner } from './hooks';
import { OutputRecorder } from './output';
import type { Metrics } from './metrics';
import { RouteStatsStore, routeStatsFile } from './route-stats';
import { CpuStatsStore, cpuStatsFile } from './cpu-stats';
import { checkWorkerEnv } from './spawn';
import { ensurePrivateDir, probeWritable, UnsafePathError } from '../util/files';
import { containPoisonRoutes } from './poison-routes';

/** How often the master writes its per-route latency to disk (and once more at exit). */
const ROUTE_STATS_FLUSH_MS = 10_000;

export function runDirOf(config: Config): string {
  return config.runDir || resolve(defaultRunDir());
}

/** An unsafe path is a configuration error: exit 2 at start, before anything is forked. */
function refuseUnsafe<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof UnsafePathError) throw new SupervError('SUPERV_ERR_UNSAFE_PATH', `${what}: ${err.message}`);
    throw err;
  }
}

/**
 * The dump dir is checked at start: an unsafe one (a symlink, not ours, writable by others) is refused; one
 * superv cannot write (read-only, full, a file in the way) is announced now, not at the first lost dump, and
 * the master runs on (the kills matter more than the dumps).
 */
function checkDumpDir(dir: string, log: Logger): void {
  let problem: string | undefined;
  try {
    const info = refuseUnsafe('dump_dir', () => ensurePrivateDir(dir));
    problem = probeWritable(dir);
    if (!info.created && (info.mode & 0o077) !== 0) {
      log.warn({ event: 'dump-dir-open', dir, mode: info.mode.toString(8) },
        `dump dir ${dir} is mode ${info.mode.toString(8)}: others can list it (the dumps themselves are 0600); superv does not change a dir it did not create`);
    }
  } catch (err) {
    if (err instanceof SupervError) throw err;
    problem = (err as Error).message;
  }
  if (problem !== undefined) {
    log.warn({ event: 'dump-dir-unwritable', dir, err: problem }, `dump dir ${dir} is not writable (${problem}): dumps will be lost until it is`);
  }
}

/** How long the master waits, at exit, for the last lines its workers and hooks printed. */
const OUTPUT_DRAIN_MS = 1000;

/**
 * Keeps the master's young generation at V8's initial size (a 1 MiB semi-space). V8 doubles it while the
 * allocation rate is high — a storm of kills, each a capture to parse, a dump to enrich, redact and write — up
 * to 16 MiB per semi-space on Node 20 and 64 MiB on Node 24, and gives it back only once allocation runs low:
 * the soak saw the master's RSS follow it from 63 to 94 MiB with the heap in use flat (docs/reliability.md).
 * The master's objects are small and short-lived, so a small young generation only means more, shorter
 * scavenges. The growth factor is the one heap-size flag V8 reads at run time (the semi-space limits are read
 * once, when the heap is set up); it is process-wide, and workers are processes of their own.
 */
function capYoungGeneration(): void {
  // A semi-space flag of the user's own (node's arguments or NODE_OPTIONS) is their decision, and wins.
  const own = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => /semi[-_]space/.test(a));
  if (!own) setFlagsFromString('--semi-space-growth-factor=1');
}

export async function runMaster(config: Config, log: Logger, reread: () => Config, logOpts?: LogOptions): Promise<number> {
  capYoungGeneration();
  checkWorkerEnv(config);
  checkDumpDir(config.dumpDir, log);
  const control = refuseUnsafe('run_dir', () => new ControlServer(runDirOf(config), config.name, config.pidFile || undefined,
    (fields, msg) => log.error(fields, msg)));
  const arbiter = new Arbiter(config, log);
  arbiter.reread = reread;
  const outLogs = logOpts ? createOutputLoggers(logOpts) : undefined;
  const output = outLogs ? new OutputRecorder(outLogs.out, outLogs.err) : undefined;
  arbiter.output = output;
  arbiter.logFile = logOpts?.file;
  const hooks = new HookRunner(log, output, config.hookConcurrency);
  arbiter.hooks = hooks;
  await control.listen((req) => arbiter.control(req)).catch((err: unknown) => {
    if (err instanceof UnsafePathError) throw new SupervError('SUPERV_ERR_UNSAFE_PATH', `run_dir or pid_file: ${err.message}`);
    throw err;
  });
  if (control.lockKind === 'pid-file') {
    log.warn({ event: 'no-flock' }, 'flock(1) not found: one master per name is kept by a pid lock file, whose takeover of a crashed master\'s lock has a narrow race');
  }
  // Per-route latency for `superv report`, kept next to the dumps so it survives restarts.
  const routeStats = new RouteStatsStore(routeStatsFile(config.dumpDir, config.name), {
    name: config.name,
    onError: (err) => log.warn({ event: 'route-stats-failed', err: err.message }, err.message),
  });
  arbiter.heartbeatListeners.push((_h, hb) => routeStats.add(hb.routes));
  arbiter.dumpListeners.push((_file, dump) => routeStats.noteDump(dump));
  arbiter.heartbeatListeners.push((_h, hb) => routeStats.noteQuarantined(hb.quarantined));
  // Per-route CPU from the workers' samples, kept beside the route stats the same way.
  const cpuStats = new CpuStatsStore(cpuStatsFile(config.dumpDir, config.name), config.name,
    { onError: (err) => log.warn({ event: 'cpu-stats-failed', err: err.message }, err.message) });
  arbiter.cpuStats = cpuStats;
  arbiter.heartbeatListeners.push((_h, hb) => cpuStats.addRequests(hb.routes));
  arbiter.cpuListeners.push((worker, w) => {
    const added = cpuStats.addWindow(worker, w);
    arbiter.metrics?.addCpu(added);
  });
  const stopPoison = containPoisonRoutes(arbiter, log);
  const routeStatsTimer = setInterval(() => { void routeStats.flush(); void cpuStats.flush(); }, ROUTE_STATS_FLUSH_MS).unref();
  let metrics: Metrics | undefined;
  try {
    if (config.metricsPort > 0) {
      // prom-client is 84 files: loaded only when metrics are asked for.
      const { Metrics: MetricsClass } = require('./metrics') as typeof import('./metrics');
      metrics = new MetricsClass({
        workersByState: () => {
          const out: Record<string, number> = { booting: 0, ready: 0, draining: 0, dumping: 0 };
          for (const h of arbiter.handles()) if (h.alive) out[h.state] = (out[h.state] ?? 0) + 1;
          return out;
        },
        inflight: () => arbiter.handles().reduce((n, h) => n + (h.alive ? h.heartbeat?.inflight ?? 0 : 0), 0),
        upgraded: () => arbiter.handles().reduce((n, h) => n + (h.alive ? h.heartbeat?.upgraded ?? 0 : 0), 0),
        loopDelays: () => arbiter.handles().filter((h) => h.alive && h.heartbeat)
          .map((h) => ({ worker: h.id, p99Ms: h.heartbeat!.eventLoopDelay.p99Ms })),
        readyCount: () => arbiter.handles().filter((h) => h.state === 'ready').length,
      });
      arbiter.metrics = metrics;
      metrics.poisonRoutes = () => arbiter.poison?.list() ?? [];
      arbiter.heartbeatListeners.push((_h, hb) => metrics!.addRoutes(hb.routes));
      try {
        await metrics.listen(config.metricsPort, config.metricsHost, log);
      } catch (err) {
        throw new SupervError('SUPERV_ERR_BAD_VALUE', 'metrics_port', `${config.metricsHost}:${config.metricsPort}: ${(err as Error).message}`);
      }
    }
    log.info({ event: 'control-listening', socket: control.socket }, `control socket ${control.socket}`);
    if (process.env[REAPED_ENV] === '1') {
      log.info({ event: 'pid1-reaper', reaper: process.ppid }, `PID 1 forwards signals; orphans are reaped by pid ${process.ppid} (perl, child subreaper)`);
    } else if (process.pid === 1) {
      // No perl or an unknown architecture (pid1.ts): Node 20 alone cannot reap the orphans PID 1 adopts.
      log.warn({ event: 'pid1' }, 'superv is PID 1 without its reaper (perl not found): it drains on SIGTERM, but orphaned ' +
        'grandchildren of the app are not reaped; run it under an init (docker run --init, tini, or Kubernetes shareProcessNamespace)');
    }
    return await arbiter.run();
  } finally {
    hooks.stopAll();
    await output?.drained(OUTPUT_DRAIN_MS);
    clearInterval(routeStatsTimer);
    stopPoison();
    await routeStats.flush();
    await cpuStats.flush();
    metrics?.close();
    control.close();
  }
}
