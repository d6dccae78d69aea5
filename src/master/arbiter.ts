// The master. Like gunicorn's Arbiter, one loop runs a few short verbs every tick:
//   handleSignals() – signal handlers only enqueue; the loop dispatches by name
//   murderStuck()   – a worker without a heartbeat for `timeout` is dumped, then killed
//   bootCheck()     – a worker that does not listen within `listen-timeout` is killed
//   manageWorkers() – spawn toward the wanted count, respecting crash backoff
// Exits (reap) and heartbeats arrive as cluster events and only update state. Replacing a worker
// (rolling reload, max_requests, max_memory) is one path: fork the new one, wait until it listens,
// then drain the old one.

import cluster, { type Worker } from 'node:cluster';
import type { Readable } from 'node:stream';
import { Duplex } from 'node:stream';
import { SupervError } from '../errors';
import type { Config } from '../config/settings';
import { formatDuration } from '../config/units';
import type { Capture, Dump, DumpReason } from '../forensics/types';
import { EXIT, IPC_CMD, isWorkerMessage, type MasterToWorker, type WorkerToMaster } from '../protocol';
import { dumpWorker, type DumpContext, type DumpRequest } from './dump';
import type { Logger } from './logger';
import { CrashBackoff } from './restarts';
import { WatchdogChannel } from './watchdog-channel';
import { WorkerHandle } from './worker-handle';
import { workerBootstrapPath, workerOptionsEnv } from './spawn';
import { runHook } from './hooks';
import { guardHandoffs } from './handoff-guard';
import type { Metrics } from './metrics';
import type { Heartbeat } from '../protocol';
import type { ControlRequest } from '../control/protocol';
import { workerStatuses, type MasterStatus } from './status';

export const TICK_MS = 100;
/** How long the master waits for the watchdog's word on a silent worker's loop. */
const LOOP_QUERY_MS = 500;

type Phase = 'starting' | 'running' | 'stopping' | 'halted';

export class Arbiter {
  private readonly workers = new Map<number, WorkerHandle>();
  private readonly signals: NodeJS.Signals[] = [];
  private readonly backoff: CrashBackoff;
  private phase: Phase = 'starting';
  private wanted: number;
  private nextSpawnAt = 0;
  private ticker: NodeJS.Timeout | undefined;
  private stopDeadline = 0;
  private exitCode = 0;
  private dumpCtx: DumpContext;
  readonly startedAt = Date.now();
  private readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;
  private reloading = false;
  restarts = 0;
  /** Others that want every heartbeat (route stats, metrics). */
  readonly heartbeatListeners: Array<(h: WorkerHandle, hb: Heartbeat) => void> = [];
  /** Others that want every dump written (route stats count slow and killed requests per route). */
  readonly dumpListeners: Array<(file: string, dump: Dump) => void> = [];
  metrics: Metrics | undefined;

  constructor(public config: Config, private readonly log: Logger) {
    this.wanted = config.workers;
    this.backoff = new CrashBackoff(config.minUptime, config.backoffMax);
    this.dumpCtx = this.makeDumpContext();
    this.done = new Promise((r) => { this.resolveDone = r; });
  }

  private makeDumpContext(): DumpContext {
    const c = this.config;
    return {
      name: c.name, app: c.app, dumpDir: c.dumpDir, dumpKeep: c.dumpKeep, dumpTimeout: c.dumpTimeout, log: this.log,
      onWritten: (file, dump) => {
        this.metrics?.dumped(dump.reason);
        for (const l of this.dumpListeners) l(file, dump);
        runHook('on_dump', this.config.onDump, file, { SUPERV_DUMP_FILE: file, SUPERV_DUMP_REASON: dump.reason }, this.config.hookTimeout, this.log);
      },
    };
  }

  private setupPrimary(): void {
    cluster.setupPrimary({
      exec: workerBootstrapPath(),
      args: this.config.args,
      execArgv: this.config.nodeArgs,
      // fd 3 is cluster IPC; fd 4 is the private pipe to the worker's watchdog thread.
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', 'pipe'],
    });
  }

  /** Starts the workers; resolves with the master's exit code when it has stopped. */
  run(): Promise<number> {
    this.setupPrimary();
    cluster.on('online', (w) => this.log.debug({ event: 'worker-online', pid: w.process.pid }, 'worker online'));
    cluster.on('listening', (w, addr) => this.onListening(w, addr.port));
    cluster.on('exit', (w, code, signal) => this.reap(w, code, signal));
    cluster.on('message', (w, msg: unknown) => { if (isWorkerMessage(msg)) this.onMessage(w, msg); });
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR2'] as const) {
      process.on(sig, () => { this.signals.push(sig); setImmediate(() => this.tick()); });
    }
    this.log.info({ event: 'master-start', app: this.config.app, workers: this.wanted, dumpDir: this.config.dumpDir },
      `superv ${this.config.name}: starting ${this.wanted} worker(s) of ${this.config.app}`);
    for (let i = 0; i < this.wanted; i++) this.spawn(true);
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    return this.done;
  }

  // ─── the loop ────────────────────────────────────────────────────────────

  private tick(): void {
    this.handleSignals();
    this.bootCheck();
    this.murderStuck();
    this.manageWorkers();
    this.checkStopped();
  }

  private handleSignals(): void {
    for (let sig = this.signals.shift(); sig; sig = this.signals.shift()) {
      this.log.info({ event: 'signal', signal: sig }, `got ${sig}`);
      switch (sig) {
        case 'SIGTERM': this.stop('graceful'); break;
        case 'SIGINT': this.stop(this.phase === 'stopping' ? 'quick' : 'graceful'); break;
        case 'SIGQUIT': this.stop('quick'); break;
        case 'SIGTTIN': this.scaleTo(this.wanted + 1); break;
        case 'SIGTTOU': this.scaleTo(this.wanted - 1); break;
        case 'SIGUSR2': this.dumpAll('manual'); break;
        case 'SIGHUP': this.reload().catch((err: Error) => this.log.error({ event: 'reload-failed', err: err.message }, err.message)); break;
        default: break;
      }
    }
  }

  private bootCheck(): void {
    const now = Date.now();
    for (const h of this.workers.values()) {
      if (h.state === 'booting' && now - h.spawnedAt > this.config.listenTimeout) {
        this.log.error({ event: 'listen-timeout', worker: h.id, pid: h.pid },
          `worker ${h.id} (pid ${h.pid}) did not listen within ${formatDuration(this.config.listenTimeout)}`);
        h.endedBy = 'listen-timeout';
        h.state = 'dead';
        h.signal('SIGKILL');
        if (h.firstStart && this.phase === 'starting') {
          this.halt(`worker ${h.id} did not listen within ${formatDuration(this.config.listenTimeout)} (--listen-timeout)`);
        }
        h.settleReady(false);
      }
    }
  }

  private murderStuck(): void {
    if (this.config.timeout === 0) return;
    const now = Date.now();
    for (const h of this.workers.values()) {
      if (h.state !== 'ready' && h.state !== 'draining') continue;
      const silentFor = now - h.lastHeartbeatAt;
      if (silentFor < this.config.timeout || h.askingLoop) continue;
      // Silence since the last heartbeat overstates the block by up to one heartbeat interval, so the
      // watchdog, which watches the main thread's tick in shared memory, has the last word.
      h.askingLoop = true;
      const asking = h.channel ? h.channel.blockedFor(LOOP_QUERY_MS) : Promise.resolve(undefined);
      void asking.then((blockedFor) => {
        h.askingLoop = false;
        if (h.state !== 'ready' && h.state !== 'draining') return;
        const silent = Date.now() - h.lastHeartbeatAt;
        if (silent < this.config.timeout) return; // a heartbeat arrived meanwhile
        // No answer (the whole process frozen): fall back to silence, past one more heartbeat interval.
        const blocked = blockedFor ?? (silent >= this.config.timeout + this.config.heartbeatInterval ? silent : 0);
        if (blocked >= this.config.timeout) this.killStuck(h, blocked);
      });
    }
  }

  private killStuck(h: WorkerHandle, blockedMs: number): void {
    const summary = `the event loop of worker ${h.id} (pid ${h.pid}) has been blocked for ${(blockedMs / 1000).toFixed(1)} s ` +
      `(timeout ${formatDuration(this.config.timeout)})`;
    this.log.error({ event: 'worker-stuck', worker: h.id, pid: h.pid, blockedMs }, summary + ': dumping, then killing');
    h.endedBy = 'timeout';
    this.metrics?.killed('timeout');
    this.dumpThenKill(h, { reason: 'timeout', summary, kill: true });
  }

  private manageWorkers(): void {
    if (this.phase === 'stopping' || this.phase === 'halted') return;
    const live = [...this.workers.values()].filter((h) => h.counted);
    if (live.length < this.wanted && Date.now() >= this.nextSpawnAt) {
      this.spawn(false);
    } else if (live.length > this.wanted) {
      const extra = live.filter((h) => h.state !== 'dumping').sort((a, b) => b.spawnedAt - a.spawnedAt)[0];
      if (extra) this.drain(extra, 'drain', 'scale down');
    }
  }

  private checkStopped(): void {
    if (this.phase !== 'stopping' && this.phase !== 'halted') return;
    const now = Date.now();
    const alive = [...this.workers.values()].filter((h) => h.alive);
    if (alive.length > 0 && now >= this.stopDeadline) {
      for (const h of alive) {
        if (h.state !== 'dumping') {
          this.log.warn({ event: 'worker-kill', worker: h.id, pid: h.pid }, `worker ${h.id} did not finish within the graceful timeout: SIGKILL`);
          h.signal('SIGKILL');
        }
      }
      this.stopDeadline = now + 1000;
    }
    if (alive.length === 0) this.exit();
  }

  // ─── verbs ───────────────────────────────────────────────────────────────

  private spawn(firstStart: boolean): WorkerHandle {
    const worker = cluster.fork(workerOptionsEnv(this.config, process.pid));
    guardHandoffs(worker);
    const id = worker.id;
    const pipe = (worker.process.stdio as ReadonlyArray<Readable | null>)[4];
    const channel = pipe instanceof Duplex
      ? new WatchdogChannel(pipe, {
        onSlow: (requestId, capture) => this.onSlow(id, requestId, capture),
        onProblem: (why) => this.log.warn({ event: 'watchdog-problem', worker: id }, why),
      })
      : undefined;
    const h = new WorkerHandle(id, worker, channel, firstStart);
    const { maxRequests, maxRequestsJitter } = this.config;
    h.maxRequests = maxRequests > 0 ? maxRequests + Math.floor(Math.random() * (maxRequestsJitter + 1)) : 0;
    this.workers.set(worker.id, h);
    this.log.info({ event: 'worker-spawned', worker: id, pid: h.pid }, `worker ${id} spawned (pid ${h.pid})`);
    return h;
  }

  private reap(w: Worker, code: number | null, signal: string | null): void {
    const h = this.workers.get(w.id);
    if (!h) return;
    this.workers.delete(w.id);
    h.channel?.close('worker exited');
    h.settleReady(false);
    const uptimeMs = h.uptimeMs();
    const wasBooting = h.state === 'booting' && h.endedBy === undefined;
    h.state = 'dead';
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const fields = { event: 'worker-exited', worker: h.id, pid: h.pid, code, signal, uptimeMs, endedBy: h.endedBy ?? null };
    if (this.phase === 'stopping' || this.phase === 'halted') {
      this.log.info(fields, `worker ${h.id} exited (${how})`);
      this.checkStopped();
      return;
    }
    this.restarts++;
    this.metrics?.restarted(h.endedBy ?? 'crash');
    if (h.endedBy !== undefined) {
      this.log.info(fields, `worker ${h.id} exited (${how}) after ${h.endedBy}`);
    } else {
      this.log.error(fields, `worker ${h.id} exited unexpectedly (${how}) after ${(uptimeMs / 1000).toFixed(1)} s`);
      if (wasBooting && h.firstStart && this.phase === 'starting') {
        const why = code === EXIT.APP_LOAD_ERROR ? 'the app threw while loading' : `it exited (${how}) before listening`;
        this.halt(`worker ${h.id}: ${why}`);
        return;
      }
      const delay = this.backoff.recordExit(uptimeMs);
      if (delay > 0) {
        this.nextSpawnAt = Date.now() + delay;
        this.log.warn({ event: 'backoff', delayMs: delay, crashStreak: this.backoff.crashStreak },
          `${this.backoff.crashStreak} quick crash(es) in a row: next worker in ${formatDuration(delay)}`);
      }
    }
    setImmediate(() => this.tick());
  }

  private onListening(w: Worker, port: number): void {
    const h = this.workers.get(w.id);
    if (!h || h.state !== 'booting') return;
    h.state = 'ready';
    h.readyAt = Date.now();
    h.lastHeartbeatAt = h.readyAt;
    h.settleReady(true);
    this.log.info({ event: 'worker-ready', worker: h.id, pid: h.pid, port, bootMs: h.readyAt - h.spawnedAt },
      `worker ${h.id} (pid ${h.pid}) listening on port ${port}`);
    if (this.phase === 'starting' && [...this.workers.values()].every((x) => x.state !== 'booting')) {
      this.phase = 'running';
      this.log.info({ event: 'master-ready', workers: this.workers.size }, `all ${this.workers.size} worker(s) ready`);
    }
    // A worker that stays up `minUptime` ends the crash streak.
    setTimeout(() => { if (h.alive) this.backoff.recordStable(); }, this.config.minUptime).unref();
  }

  private onMessage(w: Worker, msg: WorkerToMaster): void {
    const h = this.workers.get(w.id);
    if (!h) return;
    switch (msg.act) {
      case 'heartbeat':
        h.heartbeat = msg.hb;
        h.lastHeartbeatAt = Date.now();
        for (const l of this.heartbeatListeners) l(h, msg.hb);
        this.checkLimits(h, msg.hb);
        break;
      case 'dump-me':
        this.dumpOne(h, msg.reason, `worker ${h.id} (pid ${h.pid}) asked for a dump (SIGUSR2)`);
        break;
      case 'draining':
        this.log.info({ event: 'worker-draining', worker: h.id, inflight: msg.inflight }, `worker ${h.id} draining, ${msg.inflight} request(s) in flight`);
        break;
      default: break;
    }
  }

  private onSlow(workerId: number, requestId: number, capture: Capture): void {
    const h = this.workers.get(workerId);
    if (!h || !h.alive) return;
    const req = capture.inflight.find((r) => r.id === requestId);
    const what = req ? `${req.method} ${req.url} has been running for ${(req.ageMs / 1000).toFixed(1)} s` : `request ${requestId} is slow`;
    const summary = `${what} on worker ${h.id} (slow ${formatDuration(this.config.slow)})` +
      (capture.loop.blocked ? ', with the event loop blocked' : ', with the event loop free (waiting on I/O)');
    this.log.warn({ event: 'slow-request', worker: h.id, requestId, url: req?.url }, summary);
    void dumpWorker(h, { reason: 'slow', summary, kill: false, capture, requestId }, this.dumpCtx);
  }

  /** The dump-then-kill path; the kill happens even if the dump throws. */
  private dumpThenKill(h: WorkerHandle, req: DumpRequest): void {
    h.state = 'dumping';
    dumpWorker(h, req, this.dumpCtx)
      .catch((err: unknown) => this.log.error({ event: 'dump-failed', worker: h.id, err: String(err) }, 'dump failed'))
      .finally(() => h.signal('SIGKILL'));
  }

  private dumpOne(h: WorkerHandle, reason: DumpReason, summary: string): void {
    this.log.info({ event: 'dump-requested', worker: h.id, reason }, summary);
    void dumpWorker(h, { reason, summary, kill: false }, this.dumpCtx);
  }

  private dumpAll(reason: 'manual'): void {
    for (const h of this.workers.values()) {
      if (h.state === 'ready' || h.state === 'draining') this.dumpOne(h, reason, `the master got SIGUSR2: dump of worker ${h.id}`);
    }
  }

  private drain(h: WorkerHandle, endedBy: NonNullable<WorkerHandle['endedBy']>, why: string): void {
    if (h.state === 'draining' || h.state === 'dumping' || h.state === 'dead') return;
    this.log.info({ event: 'worker-drain', worker: h.id, pid: h.pid, why }, `draining worker ${h.id}: ${why}`);
    h.endedBy = endedBy;
    if (h.state === 'booting') { h.state = 'dead'; h.signal('SIGKILL'); return; }
    this.sendDrain(h);
    setTimeout(() => { if (h.alive) h.signal('SIGKILL'); }, this.config.gracefulTimeout).unref();
  }

  // ─── replacing workers: one path for reload, max_requests and max_memory ──

  /** Forks a replacement for `old`, waits until it listens, then drains `old`. False if it failed to boot. */
  private async replace(old: WorkerHandle, endedBy: 'reload' | 'max-requests' | 'memory', why: string): Promise<boolean> {
    if (old.retiring || !old.counted) return true;
    old.retiring = true;
    const fresh = this.spawn(false);
    if (!(await fresh.ready)) {
      old.retiring = false;
      return false;
    }
    if (old.alive) this.drain(old, endedBy, why);
    return true;
  }

  private checkLimits(h: WorkerHandle, hb: Heartbeat): void {
    if (h.state !== 'ready' || h.retiring || h.limitHit || this.phase !== 'running') return;
    if (h.maxRequests > 0 && hb.served >= h.maxRequests) {
      h.limitHit = true;
      void this.replace(h, 'max-requests', `served ${hb.served} requests (max_requests ${h.maxRequests})`);
    } else if (this.config.maxMemory > 0 && hb.memory.rss > this.config.maxMemory) {
      const summary = `worker ${h.id} (pid ${h.pid}) uses ${(hb.memory.rss / 2 ** 20).toFixed(0)} MiB RSS, over max_memory ` +
        `${(this.config.maxMemory / 2 ** 20).toFixed(0)} MiB; it was recycled gracefully`;
      this.log.warn({ event: 'memory-limit', worker: h.id, pid: h.pid, rss: hb.memory.rss }, summary);
      h.limitHit = true;
      void dumpWorker(h, { reason: 'memory', summary, kill: false, action: 'recycled' }, this.dumpCtx)
        .finally(() => void this.replace(h, 'memory', 'over max_memory'));
    }
  }

  /** Rolling reload: re-reads the config, then replaces the workers one at a time. */
  async reload(reread?: () => Config): Promise<{ replaced: number }> {
    if (this.reloading) throw new Error('a reload is already in progress');
    if (this.phase !== 'running') throw new Error(`cannot reload while ${this.phase}`);
    this.reloading = true;
    try {
      const next = (reread ?? this.reread)?.();
      if (next) this.applyConfig(next);
      const old = [...this.workers.values()].filter((h) => h.counted);
      this.log.info({ event: 'reload-start', workers: old.length }, `rolling reload of ${old.length} worker(s)`);
      let replaced = 0;
      for (const h of old) {
        if (!(await this.replace(h, 'reload', 'rolling reload'))) {
          this.log.error({ event: 'reload-aborted', replaced }, `reload aborted: a new worker failed to boot; the old workers keep serving`);
          throw new Error('reload aborted: a new worker failed to boot; the old workers keep serving');
        }
        replaced++;
      }
      this.log.info({ event: 'reload-done', replaced }, `reload done: ${replaced} worker(s) replaced`);
      return { replaced };
    } finally {
      this.reloading = false;
    }
  }

  /** How the config is read again on reload; set by the CLI, which knows the flags, env and file. */
  reread: (() => Config) | undefined;

  private applyConfig(next: Config): void {
    const prev = this.config;
    this.config = next;
    if (next.workers !== prev.workers) this.wanted = next.workers;
    this.dumpCtx = this.makeDumpContext();
    this.setupPrimary();
  }

  // ─── the control socket's commands ───────────────────────────────────────

  async control(req: ControlRequest): Promise<unknown> {
    switch (req.cmd) {
      case 'status': return this.status();
      case 'reload': return this.reload();
      case 'scale': {
        const n = Number(req.to);
        this.scaleTo(req.to.startsWith('+') || req.to.startsWith('-') ? this.wanted + n : n);
        return { workers: this.wanted };
      }
      case 'stop':
        setImmediate(() => this.stop(req.mode ?? 'graceful'));
        return { stopping: req.mode ?? 'graceful' };
      case 'dump': {
        const targets = [...this.workers.values()].filter((h) => (req.worker === undefined || h.id === req.worker) && h.alive);
        if (targets.length === 0) throw new Error(req.worker === undefined ? 'no live worker' : `no live worker ${req.worker}`);
        const files = await Promise.all(targets.map((h) =>
          dumpWorker(h, { reason: 'manual', summary: `manual dump of worker ${h.id} (superv dump)`, kill: false }, this.dumpCtx)));
        return { files: files.filter((f) => f !== undefined) };
      }
    }
  }

  async status(): Promise<MasterStatus> {
    const c = this.config;
    return {
      name: c.name, pid: process.pid, app: c.app, uptimeMs: Date.now() - this.startedAt, phase: this.phase,
      workersWanted: this.wanted, restarts: this.restarts, configFile: c.config || undefined, dumpDir: c.dumpDir,
      metrics: c.metricsPort > 0 ? `http://${c.metricsHost}:${c.metricsPort}/metrics` : undefined,
      memory: (({ rss, heapUsed, heapTotal }) => ({ rss, heapUsed, heapTotal }))(process.memoryUsage()),
      workers: await workerStatuses([...this.workers.values()].filter((h) => h.alive), c.heartbeatInterval),
    };
  }

  /** For metrics: the live workers. */
  handles(): WorkerHandle[] {
    return [...this.workers.values()];
  }

  /** Asks a worker to drain over IPC; a worker whose channel is gone gets SIGTERM, which drains too. */
  private sendDrain(h: WorkerHandle): void {
    h.state = 'draining';
    const msg: MasterToWorker = { cmd: IPC_CMD, act: 'drain' };
    try { h.worker.send(msg); } catch { h.signal('SIGTERM'); }
  }

  private scaleTo(n: number): void {
    const wanted = Math.max(1, Math.min(1024, n));
    this.log.info({ event: 'scale', from: this.wanted, to: wanted }, `workers: ${this.wanted} → ${wanted}`);
    this.wanted = wanted;
  }

  stop(mode: 'graceful' | 'quick'): void {
    if (this.phase === 'halted') return;
    const alive = [...this.workers.values()].filter((h) => h.alive);
    if (mode === 'quick') {
      this.log.warn({ event: 'shutdown', mode }, `quick stop: killing ${alive.length} worker(s)`);
      for (const h of alive) { h.endedBy = 'stop'; if (h.state !== 'dumping') h.signal('SIGKILL'); }
      this.phase = 'stopping';
      this.stopDeadline = Date.now() + 1000;
      this.checkStopped();
      return;
    }
    if (this.phase === 'stopping') return;
    this.phase = 'stopping';
    this.stopDeadline = Date.now() + this.config.gracefulTimeout;
    this.log.info({ event: 'shutdown', mode, workers: alive.length, gracefulTimeoutMs: this.config.gracefulTimeout },
      `graceful stop: draining ${alive.length} worker(s), up to ${formatDuration(this.config.gracefulTimeout)}`);
    for (const h of alive) {
      h.endedBy = 'stop';
      if (h.state === 'booting') { h.state = 'dead'; h.signal('SIGKILL'); continue; }
      if (h.state === 'dumping') continue;
      this.sendDrain(h);
    }
    this.checkStopped();
  }

  /** The first start failed: stop everything and exit non-zero, like gunicorn's boot-failure halt. */
  private halt(why: string): void {
    if (this.phase === 'halted') return;
    this.phase = 'halted';
    this.exitCode = 1;
    const err = new SupervError('SUPERV_ERR_BOOT_FAILED', why);
    this.log.fatal({ event: 'halt', code: err.code }, `${err.message}; halting`);
    process.stderr.write(`superv: ${err.message} (see the app's error above); superv is halting\n`);
    for (const h of this.workers.values()) { h.endedBy = 'halt'; h.signal('SIGKILL'); }
    this.stopDeadline = Date.now() + 1000;
    this.checkStopped();
  }

  private exit(): void {
    if (this.ticker === undefined) return;
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.log.info({ event: 'master-exit', code: this.exitCode, uptimeMs: Date.now() - this.startedAt }, 'superv stopped');
    this.resolveDone(this.exitCode);
  }
}
