// Assembles a running master: the control socket (claimed first, so a second master with the same name
// fails before forking anything), the arbiter, and the optional metrics port.

import { resolve } from 'node:path';
import type { Config } from '../config/settings';
import { SupervError } from '../errors';
import { defaultRunDir } from '../control/paths';
import { ControlServer } from '../control/server';
import { Arbiter } from './arbiter';
import { REAPED_ENV } from './pid1';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { RouteStatsStore, routeStatsFile } from './route-stats';

/** How often the master writes its per-route latency to disk (and once more at exit). */
const ROUTE_STATS_FLUSH_MS = 10_000;

export function runDirOf(config: Config): string {
  return config.runDir || resolve(defaultRunDir());
}

export async function runMaster(config: Config, log: Logger, reread: () => Config): Promise<number> {
  const control = new ControlServer(runDirOf(config), config.name, config.pidFile || undefined);
  const arbiter = new Arbiter(config, log);
  arbiter.reread = reread;
  await control.listen((req) => arbiter.control(req));
  // Per-route latency for `superv report`, kept next to the dumps so it survives restarts.
  const routeStats = new RouteStatsStore(routeStatsFile(config.dumpDir, config.name), {
    name: config.name,
    onError: (err) => log.warn({ event: 'route-stats-failed', err: err.message }, err.message),
  });
  arbiter.heartbeatListeners.push((_h, hb) => routeStats.add(hb.routes));
  arbiter.dumpListeners.push((_file, dump) => routeStats.noteDump(dump));
  const routeStatsTimer = setInterval(() => void routeStats.flush(), ROUTE_STATS_FLUSH_MS).unref();
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
        loopDelays: () => arbiter.handles().filter((h) => h.alive && h.heartbeat)
          .map((h) => ({ worker: h.id, p99Ms: h.heartbeat!.eventLoopDelay.p99Ms })),
        readyCount: () => arbiter.handles().filter((h) => h.state === 'ready').length,
      });
      arbiter.metrics = metrics;
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
    clearInterval(routeStatsTimer);
    await routeStats.flush();
    metrics?.close();
    control.close();
  }
}
