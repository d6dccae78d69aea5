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

import { formatDuration } from '../config/units';
import { startOnlyChanges, withStartOnlyFrom } from '../config/load';
import { MAX_WORKERS, yamlOf, type Config } from '../config/settings';
import type { Capture, Dump, DumpReason, RequestInfo } from '../dump/types';
import type { CpuWindow } from '../dump/cpu';
import { EXIT, IPC_CMD, isWorkerMessage, type MasterToWorker, type WorkerToMaster } from '../protocol';
import { dumpWorker, type DumpContext, type DumpRequest } from './dump';
import type { Logger } from './logger';
import { CrashBackoff } from './restarts';
import { CrashRecorder } from './crash';
import { WatchdogChannel } from './watchdog-channel';
import { WorkerHandle, stderrHead } from './worker-handle';
import { APP_READY_MESSAGE, bootStallAfterMs, notReadyWhat, readyOn } from './readiness';
import { freeIndex } from './instance-index';
import { LockHolders } from './lock-holders';
import { instanceEnv, workerBootstrapPath, workerOptionsEnv } from './spawn';
import type { HookRunner } from './hooks';
import type { OutputRecorder } from './output';
import { guardHandoffs } from './handoff-guard';
import { ListenKeeper } from './listen-keeper';
import type { PoisonRoutes } from './poison-routes';
import type { Metrics } from './metrics';
import type { CpuStatsStore } from './cpu-stats';
import type { Heartbeat } from '../protocol';
import type { ControlRequest } from '../control/protocol';
import { resolve } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import { defaultRunDir } from '../control/paths';
import { workerStatuses, type MasterStatus } from './status';
import type { LogFile } from './log-file';
import { forksThisTick } from './fork-pacing';
import { cpuBudget, describeBudget, type CpuBudget } from '../config/cpu-budget';
import { poolOverMemory } from './pool-size';
import { heapSnapshot, profileWorkers } from './on-demand';

/** The loop's period while anything is in motion (booting, stopping, spawning, asking a watchdog). */
export const TICK_MS = 100;
/**
 * The loop's longest sleep while every worker is ready and heard from: it then wakes exactly when the first
 * worker's silence would reach `timeout`, or after this. A wake-up costs the master ~0.3 ms of CPU here, and
 * ten a second were half of an idle 8-worker fleet's cost; the stuck check is not later for it.
 */
const IDLE_TICK_MS = 1000;
const mib = (b: number): string => `${Math.round(b / 2 ** 20)} MiB`;

/** How long the master waits for the watchdog's word on a silent worker's loop. */
const LOOP_QUERY_MS = 500;
/** How long a live CPU report waits for the frames still being source-mapped (cpu-frame-map.ts). */
const CPU_REPORT_MAP_WAIT_MS = 500;

type Phase = 'starting' | 'running' | 'stopping' | 'halted';

export class Arbiter {
  private readonly workers = new Map<number, WorkerHandle>();
  private readonly signals: NodeJS.Signals[] = [];
  private readonly backoff: CrashBackoff;
  /** Recycles for max_memory back off like crashes: a worker over the limit soon after its start extends the streak. */
  private readonly memoryBackoff: CrashBackoff;
  private memoryRecycleAt = 0;
  private phase: Phase = 'starting';
  private wanted: number;
  private nextSpawnAt = 0;
  private ticker: NodeJS.Timeout | undefined;
  private exited = false;
  private stopDeadline = 0;
  private exitCode = 0;
  private dumpCtx: DumpContext;
  readonly startedAt = Date.now();
  private readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;
  private reloading = false;
  /** The CPUs and memory this process may use, read once at start (cpu-budget.ts). */
  private readonly budget: CpuBudget = cpuBudget();
  /** Whether the pool was checked against the memory limit since the last change of its size. */
  private memoryChecked = false;
  restarts = 0;
  /** Others that want every heartbeat (route stats, metrics). */
  readonly heartbeatListeners: Array<(h: WorkerHandle, hb: Heartbeat) => void> = [];
  /** Others that want every CPU sample window (CPU stats, metrics). */
  readonly cpuListeners: Array<(worker: number, w: CpuWindow) => void> = [];
  /** Others that want every dump written (route stats count slow and killed requests per route). */
  readonly dumpListeners: Array<(file: string, dump: Dump) => void> = [];
  metrics: Metrics | undefined;
  /** Per-route CPU (cpu-stats.ts, set by master.ts): a timeout dump takes the worker's hottest functions from it. */
  cpuStats: CpuStatsStore | undefined;
  /** Runs on_dump (set by master.ts, which ends the hooks at stop). */
  hooks: HookRunner | undefined;
  /** Records the workers' stdout and stderr (set by master.ts); without it they inherit the master's. */
  output: OutputRecorder | undefined;
  /** A daemon's log file (set by master.ts): SIGUSR1 reopens it. */
  logFile: LogFile | undefined;
  /** Names lock holders that are requests of other workers (fed by the heartbeats' DB sessions). */
  private readonly lockHolders = new LockHolders({
    workers: () => this.workers.values(),
    dump: (h, req) => dumpWorker(h, req, this.dumpCtx),
    dumpTimeout: () => this.config.dumpTimeout,
  });
  /** Explains the workers that die on their own (crash dumps); see crash.ts. */
  private readonly crashes: CrashRecorder;
  /** Poison-route containment (poison-routes.ts), when wired: status shows it. */
  poison: PoisonRoutes | undefined;
  /** Holds every listening handle open while superv runs (listen-keeper.ts). */
  readonly keeper: ListenKeeper;

  constructor(public config: Config, private readonly log: Logger) {
    this.wanted = config.workers;
    this.keeper = new ListenKeeper({ log, holdTimeout: () => this.config.holdTimeout });
    this.backoff = new CrashBackoff(config.minUptime, config.backoffMax);
    this.memoryBackoff = new CrashBackoff(config.minUptime, config.backoffMax);
    this.dumpCtx = this.makeDumpContext();
    this.crashes = new CrashRecorder({ log, ctx: () => this.dumpCtx, metrics: () => this.metrics });
    this.done = new Promise((r) => { this.resolveDone = r; });
  }

  private makeDumpContext(): DumpContext {
    const c = this.config;
    return {
      name: c.name, app: c.app, dumpDir: c.dumpDir, dumpKeep: c.dumpKeep, dumpTimeout: c.dumpTimeout, traceUrl: c.traceUrl, log: this.log,
      onWritten: (file, dump) => {
        this.metrics?.dumped(dump.reason);
        if (dump.collateral) this.metrics?.lostWith(dump.collateral);
        for (const l of this.dumpListeners) l(file, dump);
        this.hooks?.run({ name: 'on_dump', command: this.config.onDump, arg: file, env: { SUPERV_DUMP_FILE: file, SUPERV_DUMP_REASON: dump.reason }, timeoutMs: this.config.hookTimeout });
      },
      nameLockHolders: (h, req, capture) => this.lockHolders.name(h, req, capture),
      recentCpu: (worker) => this.cpuStats?.recentFunctions(worker),
    };
  }

  private setupPrimary(): void {
    cluster.setupPrimary({
      exec: workerBootstrapPath(),
      args: this.config.args,
      execArgv: this.config.nodeArgs,
      // fd 3 is cluster IPC; fd 4 is the private pipe to the worker's watchdog thread. stdout and stderr are
      // pipes recorded line by line as `worker N stdout|stderr` (output.ts), so no app line can pass for superv's;
      // stderr is piped in any case so the master keeps its tail for crash dumps (crash.ts).
      stdio: this.output ? ['inherit', 'pipe', 'pipe', 'ipc', 'pipe'] : ['inherit', 'inherit', 'pipe', 'ipc', 'pipe'],
    });
  }

  /** Starts the workers; resolves with the master's exit code when it has stopped. */
  run(): Promise<number> {
    this.setupPrimary();
    cluster.on('online', (w) => this.log.debug({ event: 'worker-online', pid: w.process.pid }, 'worker online'));
    cluster.on('listening', (w, addr) => this.onListening(w, addr.port));
    cluster.on('exit', (w, code, signal) => this.reap(w, code, signal));
    cluster.on('message', (w, msg: unknown) => {
      if (isWorkerMessage(msg)) this.onMessage(w, msg);
      else if (msg === APP_READY_MESSAGE) this.onAppReady(w);
    });
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGTTIN', 'SIGTTOU', 'SIGUSR1', 'SIGUSR2'] as const) {
      process.on(sig, () => { this.signals.push(sig); setImmediate(() => this.tick()); });
    }
    this.log.info({ event: 'master-start', app: this.config.app, workers: this.wanted, dumpDir: this.config.dumpDir },
      `superv ${this.config.name}: starting ${this.wanted} worker(s) of ${this.config.app}`);
    this.logSizing();
    // The workers are forked by manageWorkers(), a few per tick (fork-pacing.ts), so signals are handled meanwhile.
    this.schedule(0);
    return this.done;
  }

  // ─── the loop ────────────────────────────────────────────────────────────

  private tick(): void {
    this.handleSignals();
    this.bootCheck();
    this.murderStuck();
    this.manageWorkers();
    this.checkStopped();
    this.schedule(this.nextTickMs());
  }

  /** One timer for the loop, replaced at every tick (a tick may also run early, on a signal or an exit). */
  private schedule(ms: number): void {
    if (this.ticker !== undefined) clearTimeout(this.ticker);
    this.ticker = this.exited ? undefined : setTimeout(() => this.tick(), ms);
  }

  /** Every TICK_MS while something moves; at rest, when the first silence reaches `timeout`, at most IDLE_TICK_MS. */
  private nextTickMs(): number {
    if (this.phase !== 'running' || this.signals.length > 0 || this.reloading) return TICK_MS;
    let live = 0;
    let due = IDLE_TICK_MS;
    const now = Date.now();
    for (const h of this.workers.values()) {
      if (h.state !== 'ready' || h.askingLoop) return TICK_MS;
      live++;
      if (this.config.timeout > 0) due = Math.min(due, h.lastHeartbeatAt + this.config.timeout - now);
    }
    if (live !== this.wanted) return TICK_MS;
    return Math.max(TICK_MS, due);
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
        // Like nginx and gunicorn: logrotate's `create` mode renames the file, then asks for a reopen. Without a
        // log file there is nothing to reopen; the handler still keeps Node's default (an inspector on 9229) off.
        case 'SIGUSR1': this.reopenLog(); break;
        case 'SIGHUP': this.reload().catch((err: Error) => this.log.error({ event: 'reload-failed', err: err.message }, err.message)); break;
        default: break;
      }
    }
  }

  private reopenLog(): void {
    if (!this.logFile) return;
    this.logFile.reopen();
    this.log.info({ event: 'log-reopened', file: this.logFile.path }, `log file ${this.logFile.path} reopened`);
  }

  private bootCheck(): void {
    if (this.config.listenTimeout === 0) return; // 0 = wait forever
    const now = Date.now();
    const what = notReadyWhat(readyOn(this.config));
    for (const h of this.workers.values()) {
      if (h.state === 'booting' && now - h.spawnedAt > this.config.listenTimeout) {
        this.log.error({ event: 'listen-timeout', worker: h.id, pid: h.pid },
          `worker ${h.id} (pid ${h.pid}) ${what} within ${formatDuration(this.config.listenTimeout)}`);
        h.kill('listen-timeout');
        if (h.firstStart && this.phase === 'starting') {
          const hint = readyOn(this.config) === 'listen' ? '; a worker that serves no HTTP needs --worker-kind background' : '';
          this.halt(`worker ${h.id} ${what} within ${formatDuration(this.config.listenTimeout)} (--listen-timeout${hint})`, h);
        }
      }
    }
  }

  private murderStuck(): void {
    if (this.config.timeout === 0) return;
    const now = Date.now();
    for (const h of this.workers.values()) {
      if (!h.watched) continue;
      const limit = h.state === 'booting' ? bootStallAfterMs(this.config) : this.config.timeout;
      const silentFor = now - h.lastHeartbeatAt;
      if (silentFor < limit || h.askingLoop || h.snapshotting) continue;
      // Silence since the last heartbeat overstates the block by up to one heartbeat interval, so the
      // watchdog, which watches the main thread's tick in shared memory, has the last word.
      h.askingLoop = true;
      const asking = h.channel ? h.channel.blockedFor(LOOP_QUERY_MS) : Promise.resolve(undefined);
      void asking.then((blockedFor) => {
        h.askingLoop = false;
        if (!h.watched || h.snapshotting) return;
        const silent = Date.now() - h.lastHeartbeatAt;
        if (silent < limit) return; // a heartbeat arrived meanwhile
        // No answer (the whole process frozen): fall back to silence, past one more promised heartbeat. Not for a
        // booting worker: its silence counts from the fork, Node's own start included, and its watchdog may not
        // be up yet; only the watchdog's measure of the app's load (listen_timeout covers the rest) counts.
        const beat = Math.max(this.config.heartbeatInterval, h.heartbeatWithinMs);
        const blocked = blockedFor ?? (h.state !== 'booting' && silent >= this.config.timeout + beat ? silent : 0);
        if (blocked >= limit) this.killStuck(h, blocked, limit);
      });
    }
  }

  private killStuck(h: WorkerHandle, blockedMs: number, limitMs: number): void {
    const booting = h.state === 'booting';
    const summary = `the event loop of worker ${h.id} (pid ${h.pid}) has been blocked for ${(blockedMs / 1000).toFixed(1)} s ` +
      (booting ? `while booting (a boot may block ${formatDuration(limitMs)})` : `(timeout ${formatDuration(this.config.timeout)})`);
    this.log.error({ event: 'worker-stuck', worker: h.id, pid: h.pid, blockedMs, booting }, summary + ': dumping, then killing');
    h.endedBy = 'timeout';
    h.stalledBooting = booting;
    this.metrics?.killed('timeout');
    // A first start whose boot blocks will block again: halt as for a boot that never gets ready, after the dump.
    const haltAfter = booting && h.firstStart && this.phase === 'starting';
    this.dumpThenKill(h, { reason: 'timeout', summary, kill: true }, haltAfter
      ? () => this.halt(`worker ${h.id} blocked its event loop for ${(blockedMs / 1000).toFixed(1)} s while booting ` +
        `(a boot may block ${formatDuration(limitMs)}); its dump says where${h.lastDump ? `: ${h.lastDump}` : ''}`)
      : undefined);
  }

  private manageWorkers(): void {
    if (this.phase === 'stopping' || this.phase === 'halted') return;
    const live = [...this.workers.values()].filter((h) => h.counted);
    if (live.length < this.wanted && Date.now() >= this.nextSpawnAt) {
      const booting = live.filter((h) => h.state === 'booting').length;
      for (let n = forksThisTick(this.wanted, live.length, booting); n > 0; n--) this.spawn(this.phase === 'starting');
    } else if (live.length > this.wanted) {
      // The highest index goes first, so the indexes left stay 0..N-1.
      const extra = live.filter((h) => h.state !== 'dumping').sort((a, b) => b.index - a.index || b.spawnedAt - a.spawnedAt)[0];
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
          h.kill();
        }
      }
      this.stopDeadline = now + 1000;
    }
    if (alive.length === 0) this.exit();
  }

  // ─── verbs ───────────────────────────────────────────────────────────────

  /** Forks a worker with instance index `index`, by default the lowest no counted worker holds. */
  private spawn(firstStart: boolean, index = freeIndex([...this.workers.values()].filter((h) => h.counted).map((h) => h.index))): WorkerHandle {
    const worker = cluster.fork({ ...workerOptionsEnv(this.config, process.pid, this.crashes.dir()), ...instanceEnv(this.config, index) });
    guardHandoffs(worker, (key) => this.keeper.keeps(key));
    this.keeper.watch(worker);
    const id = worker.id;
    const pipe = (worker.process.stdio as ReadonlyArray<Readable | null>)[4];
    const channel = pipe instanceof Duplex
      ? new WatchdogChannel(pipe, {
        onSlow: (requestId, capture, request) => this.onSlow(id, requestId, capture, request),
        onHeap: (used, limit, capture) => { const w = this.workers.get(id); if (w?.running) this.crashes.heapWarning(w, used, limit, capture); },
        onCpu: (window) => { for (const l of this.cpuListeners) l(id, window); },
        onProblem: (why) => this.log.warn({ event: 'watchdog-problem', worker: id }, why),
      })
      : undefined;
    this.output?.attach(worker.process.stdout, `worker ${id} stdout`, 'out');
    this.output?.attach(worker.process.stderr, `worker ${id} stderr`, 'err');
    const h = new WorkerHandle(id, worker, channel, firstStart, index, this.config.workerKind === 'background' ? 'background' : 'http');
    this.crashes.watch(h, this.output !== undefined);
    const { maxRequests, maxRequestsJitter } = this.config;
    h.maxRequests = maxRequests > 0 ? maxRequests + Math.floor(Math.random() * (maxRequestsJitter + 1)) : 0;
    this.workers.set(worker.id, h);
    this.log.info({ event: 'worker-spawned', worker: id, pid: h.pid, index }, `worker ${id} spawned (pid ${h.pid}, index ${index})`);
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
    h.markReaped();
    const planned = h.endedBy !== undefined || this.phase === 'stopping' || this.phase === 'halted';
    void this.crashes.reaped(h, code, signal, planned);
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
      // A boot that blocks will block again: its replacements back off like a crash loop's.
      if (h.stalledBooting) this.backOff(this.backoff.recordExit(uptimeMs));
    } else {
      this.log.error(fields, `worker ${h.id} exited unexpectedly (${how}) after ${(uptimeMs / 1000).toFixed(1)} s`);
      if (wasBooting && h.firstStart && this.phase === 'starting') {
        const why = code === EXIT.APP_LOAD_ERROR ? 'the app threw while loading' : `it exited (${how}) before it was ready`;
        this.halt(`worker ${h.id}: ${why}`, h);
        return;
      }
      this.backOff(this.backoff.recordExit(uptimeMs));
    }
    setImmediate(() => this.tick());
  }

  private backOff(delay: number): void {
    if (delay <= 0) return;
    this.nextSpawnAt = Date.now() + delay;
    this.log.warn({ event: 'backoff', delayMs: delay, crashStreak: this.backoff.crashStreak },
      `${this.backoff.crashStreak} quick crash(es) in a row: next worker in ${formatDuration(delay)}`);
  }

  private onListening(w: Worker, port: number): void {
    const h = this.workers.get(w.id);
    if (!h || readyOn(this.config) !== 'listen') return;
    this.becameReady(h, `listening on port ${port}`, { port });
  }

  /** wait_ready: the app said it is ready (process.send('ready')); without wait_ready the message is the app's own. */
  private onAppReady(w: Worker): void {
    const h = this.workers.get(w.id);
    if (!h || readyOn(this.config) !== 'signal') return;
    this.becameReady(h, "ready (the app sent 'ready')", {});
  }

  /** booting → ready, however readiness was decided (readiness.ts). */
  private becameReady(h: WorkerHandle, how: string, fields: Record<string, unknown>): void {
    if (!h.markReady()) return;
    this.log.info({ event: 'worker-ready', worker: h.id, pid: h.pid, index: h.index, ...fields, bootMs: h.readyAt - h.spawnedAt },
      `worker ${h.id} (pid ${h.pid}, index ${h.index}) ${how}`);
    const all = [...this.workers.values()];
    if (this.phase === 'starting' && all.every((x) => x.state !== 'booting') && all.filter((x) => x.counted).length >= this.wanted) {
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
        h.heartbeatWithinMs = msg.hb.nextWithinMs;
        for (const l of this.heartbeatListeners) l(h, msg.hb);
        this.checkLimits(h, msg.hb);
        this.checkPoolMemory();
        break;
      case 'dump-me':
        this.dumpOne(h, msg.reason, `worker ${h.id} (pid ${h.pid}) asked for a dump (SIGUSR2)`);
        break;
      case 'booted':
        if (readyOn(this.config) === 'boot') this.becameReady(h, 'loaded (background worker)', {});
        break;
      case 'draining':
        this.log.info({ event: 'worker-draining', worker: h.id, inflight: msg.inflight }, `worker ${h.id} draining, ${msg.inflight} request(s) in flight`);
        break;
      default: break;
    }
  }

  private onSlow(workerId: number, requestId: number, capture: Capture, request?: RequestInfo): void {
    const h = this.workers.get(workerId);
    if (!h || !h.running) return;
    const req = capture.inflight.find((r) => r.id === requestId) ?? request;
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    // A stream that stalled is slow for its silence, not its age.
    const what = !req ? `request ${requestId} is slow`
      : req.lastWriteMs !== undefined ? `${req.method} ${req.url} (streaming for ${secs(req.ageMs)}) has written nothing for ${secs(req.lastWriteMs)}`
        : `${req.method} ${req.url} has been running for ${secs(req.ageMs)}`;
    const summary = `${what} on worker ${h.id} (slow ${formatDuration(this.config.slow)})` +
      (capture.loop.blocked ? ', with the event loop blocked' : ', with the event loop free (waiting on I/O)');
    this.log.warn({ event: 'slow-request', worker: h.id, requestId, url: req?.url }, summary);
    void dumpWorker(h, { reason: 'slow', summary, kill: false, capture, requestId, request }, this.dumpCtx);
  }

  /** The dump-then-kill path; the kill happens even if the dump throws (kill() is idempotent). */
  private dumpThenKill(h: WorkerHandle, req: DumpRequest, then?: () => void): void {
    h.markDumping();
    dumpWorker(h, req, this.dumpCtx)
      .catch((err: unknown) => this.log.error({ event: 'dump-failed', worker: h.id, err: String(err) }, 'dump failed'))
      .finally(() => { h.kill(); then?.(); });
  }

  private dumpOne(h: WorkerHandle, reason: DumpReason, summary: string): void {
    this.log.info({ event: 'dump-requested', worker: h.id, reason }, summary);
    void dumpWorker(h, { reason, summary, kill: false }, this.dumpCtx);
  }

  private dumpAll(reason: 'manual'): void {
    for (const h of this.workers.values()) {
      if (h.serving) this.dumpOne(h, reason, `the master got SIGUSR2: dump of worker ${h.id}`);
    }
  }

  private drain(h: WorkerHandle, endedBy: NonNullable<WorkerHandle['endedBy']>, why: string): void {
    if (h.state !== 'ready' && h.state !== 'booting') return;
    this.log.info({ event: 'worker-drain', worker: h.id, pid: h.pid, why }, `draining worker ${h.id}: ${why}`);
    h.endedBy = endedBy;
    if (h.state === 'booting') { h.kill(); return; }
    this.sendDrain(h);
    setTimeout(() => { if (h.alive) h.kill(); }, this.config.gracefulTimeout).unref();
  }

  // ─── replacing workers: one path for reload, max_requests and max_memory ──

  /** Forks a replacement for `old`, waits until it listens, then drains `old`. False if it failed to boot. */
  /** The replacement keeps `old`'s instance index. Resolves with the failed replacement when it did not get ready. */
  private async replace(old: WorkerHandle, endedBy: 'reload' | 'max-requests' | 'memory', why: string): Promise<WorkerHandle | undefined> {
    if (old.retiring || !old.counted) return undefined;
    old.retiring = true;
    const fresh = this.spawn(false, old.index);
    if (!(await fresh.ready)) {
      old.retiring = false;
      return fresh;
    }
    if (old.alive) this.drain(old, endedBy, why);
    return undefined;
  }

  private checkLimits(h: WorkerHandle, hb: Heartbeat): void {
    if (h.state !== 'ready' || h.retiring || h.limitHit || this.phase !== 'running') return;
    if (h.maxRequests > 0 && hb.served >= h.maxRequests) {
      h.limitHit = true;
      void this.replace(h, 'max-requests', `served ${hb.served} requests (max_requests ${h.maxRequests})`);
    } else if (this.config.maxMemory > 0 && hb.memory.rss > this.config.maxMemory && Date.now() >= this.memoryRecycleAt) {
      const delay = this.memoryBackoff.recordExit(h.uptimeMs());
      this.memoryRecycleAt = Date.now() + delay;
      if (delay > 0) {
        this.log.warn({ event: 'memory-backoff', delayMs: delay, streak: this.memoryBackoff.crashStreak },
          `${this.memoryBackoff.crashStreak} worker(s) in a row over max_memory within min_uptime: no memory recycle for ${formatDuration(delay)}`);
      }
      const summary = `worker ${h.id} (pid ${h.pid}) uses ${(hb.memory.rss / 2 ** 20).toFixed(0)} MiB RSS, over max_memory ` +
        `${(this.config.maxMemory / 2 ** 20).toFixed(0)} MiB; it was recycled gracefully`;
      this.log.warn({ event: 'memory-limit', worker: h.id, pid: h.pid, rss: hb.memory.rss }, summary);
      h.limitHit = true;
      void dumpWorker(h, { reason: 'memory', summary, kill: false, action: 'recycled' }, this.dumpCtx)
        .finally(() => void this.replace(h, 'memory', 'over max_memory'));
    }
  }

  /** Rolling reload: re-reads the config, then replaces the workers one at a time. */
  async reload(reread?: () => Config): Promise<{ replaced: number; notApplied: string[] }> {
    if (this.reloading) throw new Error('a reload is already in progress');
    if (this.phase !== 'running') throw new Error(`cannot reload while ${this.phase}`);
    this.reloading = true;
    try {
      const next = (reread ?? this.reread)?.();
      const notApplied = next ? this.applyConfig(next) : [];
      const old = [...this.workers.values()].filter((h) => h.counted);
      this.log.info({ event: 'reload-start', workers: old.length }, `rolling reload of ${old.length} worker(s)`);
      let replaced = 0;
      for (const h of old) {
        const failed = await this.replace(h, 'reload', 'rolling reload');
        if (failed) {
          // The caller (superv reload) gets the new worker's own error, not just that it failed.
          const said = await stderrHead(failed);
          const how = failed.endedBy === 'listen-timeout' ? `was not ready within ${formatDuration(this.config.listenTimeout)}`
            : failed.endedBy === 'timeout' ? 'blocked its event loop while booting' : 'exited before it was ready';
          const msg = `reload aborted: the new worker ${failed.id} ${how}; the old workers keep serving` +
            (said ? `. Its stderr:\n${said}` : ' (it printed nothing on stderr)');
          this.log.error({ event: 'reload-aborted', replaced, worker: failed.id, stderr: said }, msg);
          throw new Error(msg);
        }
        replaced++;
      }
      this.log.info({ event: 'reload-done', replaced }, `reload done: ${replaced} worker(s) replaced`);
      return { replaced, notApplied };
    } finally {
      this.reloading = false;
    }
  }

  /** How the config is read again on reload; set by the CLI, which knows the flags, env and file. */
  reread: (() => Config) | undefined;

  /** Takes a re-read config; returns the changed settings it cannot apply live (they keep their value). */
  private applyConfig(read: Config): string[] {
    const prev = this.config;
    const notApplied = startOnlyChanges(prev, read).map((k) => yamlOf(k));
    if (notApplied.length > 0) {
      this.log.warn({ event: 'reload-not-applied', settings: notApplied },
        `reload: ${notApplied.join(', ')} changed but take effect only at start (superv stop, then start); the running values stay`);
    }
    const next = withStartOnlyFrom(prev, read);
    this.config = next;
    if (next.workers !== prev.workers) { this.wanted = next.workers; this.memoryChecked = false; }
    this.dumpCtx = this.makeDumpContext();
    if (this.hooks) this.hooks.concurrency = next.hookConcurrency;
    this.setupPrimary();
    return notApplied;
  }

  // ─── the control socket's commands ───────────────────────────────────────

  async control(req: ControlRequest): Promise<unknown> {
    switch (req.cmd) {
      case 'status': return this.status();
      case 'reload': return this.reload();
      case 'scale': {
        const n = Number(req.to);
        const to = req.to.startsWith('+') || req.to.startsWith('-') ? this.wanted + n : n;
        // Refused, not clamped: `scale 5000` silently forking 1024 was a surprise, `scale 0` becoming 1 another.
        if (to < 1 || to > MAX_WORKERS) {
          throw new Error(`cannot scale to ${to} worker(s) (from ${this.wanted}): between 1 and ${MAX_WORKERS}` +
            (to < 1 ? '; to stop them all: superv stop' : ''));
        }
        this.scaleTo(to);
        setImmediate(() => this.tick());
        return { workers: this.wanted };
      }
      case 'stop':
        setImmediate(() => { this.stop(req.mode ?? 'graceful'); this.tick(); });
        return { stopping: req.mode ?? 'graceful', gracefulTimeoutMs: this.config.gracefulTimeout };
      case 'dump': {
        const targets = [...this.workers.values()].filter((h) => (req.worker === undefined || h.id === req.worker) && h.running);
        if (targets.length === 0) throw new Error(req.worker === undefined ? 'no live worker' : `no live worker ${req.worker}`);
        const files = await Promise.all(targets.map((h) =>
          dumpWorker(h, { reason: 'manual', summary: `manual dump of worker ${h.id} (superv dump)`, kill: false }, this.dumpCtx)));
        return { files: files.filter((f) => f !== undefined) };
      }
      case 'cpu': {
        // Frames of the last window may still be being source-mapped: a moment for them, never more.
        await this.cpuStats?.settled(CPU_REPORT_MAP_WAIT_MS);
        return this.cpuStats?.snapshot() ?? null;
      }
      case 'profile': return profileWorkers(this.liveTargets(req.worker), req.durationMs, req.file);
      case 'heap-snapshot': return heapSnapshot(this.liveTargets(req.worker)[0]!, req.file);
    }
  }

  async status(): Promise<MasterStatus> {
    const c = this.config;
    return {
      name: c.name, pid: process.pid, app: c.app, uptimeMs: Date.now() - this.startedAt, phase: this.phase,
      workersWanted: this.wanted, restarts: this.restarts, configFile: c.config || undefined, dumpDir: c.dumpDir,
      metrics: c.metricsPort > 0 ? `http://${c.metricsHost}:${c.metricsPort}/metrics` : undefined,
      memory: { ...(({ rss, heapUsed, heapTotal, external }) => ({ rss, heapUsed, heapTotal, external }))(process.memoryUsage()), heapSpaces: heapSpaces() },
      workers: await workerStatuses([...this.workers.values()].filter((h) => h.alive), c.heartbeatInterval),
      poisonRoutes: this.poison?.list(),
      logFile: this.logFile?.path,
      start: {
        node: process.execPath, cli: process.argv[1] ?? '', argv: process.argv.slice(2), cwd: process.cwd(),
        runDir: c.runDir || resolve(defaultRunDir()), gracefulTimeoutMs: c.gracefulTimeout,
      },
    };
  }

  /** The workers an on-demand command targets: one by id, or all serving; throws naming what is missing. */
  private liveTargets(worker: number | undefined): WorkerHandle[] {
    const all = [...this.workers.values()].filter((h) => h.running);
    const targets = all.filter((h) => worker === undefined || h.id === worker);
    if (targets.length === 0) {
      throw new Error(worker === undefined ? 'no live worker' : `no live worker ${worker} (live: ${all.map((h) => h.id).join(', ') || 'none'})`);
    }
    return targets;
  }

  /** For metrics: the live workers. */
  handles(): WorkerHandle[] {
    return [...this.workers.values()];
  }

  /** Asks a worker to drain over IPC; a worker whose channel is gone gets SIGTERM, which drains too. */
  private sendDrain(h: WorkerHandle): void {
    if (!h.markDraining()) return;
    const msg: MasterToWorker = { cmd: IPC_CMD, act: 'drain' };
    try { h.worker.send(msg); } catch { h.signal('SIGTERM'); }
  }

  /** How the pool was sized against the CPUs this process may use (workers: max is exactly them). */
  private logSizing(): void {
    const b = this.budget;
    const over = this.wanted > b.cpus ? `; more workers than CPUs: they share them` : '';
    this.log.info({ event: 'pool-sized', workers: this.wanted, cpus: b.cpus, affinity: b.affinity, hostCpus: b.hostCpus,
      cpuQuota: b.quota ?? null, memoryLimit: b.memoryLimit ?? null },
    `pool: ${this.wanted} worker(s)${this.wanted === b.cpus ? ' (= workers: max)' : ''}; ${describeBudget(b)}` +
      `${b.memoryLimit !== undefined ? `; cgroup memory limit ${mib(b.memoryLimit)}` : ''}${over}`);
  }

  /**
   * Once per pool size, as soon as a worker has reported its RSS (after the start; at once on a scale, before
   * the new workers fork): warn if that many workers at the measured RSS outgrow the cgroup memory limit.
   */
  private checkPoolMemory(): void {
    if (this.memoryChecked || this.phase !== 'running' || this.budget.memoryLimit === undefined) return;
    const rss = [...this.workers.values()].filter((h) => h.counted && h.heartbeat !== undefined).map((h) => h.heartbeat!.memory.rss);
    if (rss.length === 0) return;
    this.memoryChecked = true;
    const over = poolOverMemory(this.budget.memoryLimit, this.wanted, rss, process.memoryUsage().rss);
    if (!over) return;
    this.log.warn({ event: 'pool-over-memory', workers: this.wanted, ...over },
      `${this.wanted} worker(s) × ${mib(over.perWorkerBytes)} RSS measured now, plus the master, make ${mib(over.needBytes)}: ` +
      `over the cgroup memory limit of ${mib(over.limitBytes)}; as they grow, the kernel will OOM-kill them. ` +
      `Set workers lower or raise the limit`);
  }

  private scaleTo(n: number): void {
    this.memoryChecked = false;
    const wanted = Math.max(1, Math.min(MAX_WORKERS, n));
    this.log.info({ event: 'scale', from: this.wanted, to: wanted }, `workers: ${this.wanted} → ${wanted}`);
    this.wanted = wanted;
    this.checkPoolMemory();
  }

  stop(mode: 'graceful' | 'quick'): void {
    if (this.phase === 'halted') return;
    this.keeper.release(`${mode} stop`);
    const alive = [...this.workers.values()].filter((h) => h.alive);
    if (mode === 'quick') {
      this.log.warn({ event: 'shutdown', mode }, `quick stop: killing ${alive.length} worker(s)`);
      for (const h of alive) { h.endedBy = 'stop'; if (h.state !== 'dumping') h.kill(); }
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
      if (h.state === 'booting') { h.kill(); continue; }
      if (h.state !== 'ready') continue; // dumping: killed by its dump; draining or killed: on its way out
      this.sendDrain(h);
    }
    this.checkStopped();
  }

  /** The first start failed: stop everything and exit non-zero, like gunicorn's boot-failure halt. */
  /** `h`: the worker whose boot failed; its stderr says whether there is an app error to point to. */
  private halt(why: string, h?: WorkerHandle): void {
    if (this.phase === 'halted') return;
    this.phase = 'halted';
    this.exitCode = 1;
    this.keeper.release('halt');
    const err = new SupervError('SUPERV_ERR_BOOT_FAILED', why);
    this.log.fatal({ event: 'halt', code: err.code }, `${err.message}; halting`);
    // After the worker's last lines (its error), which arrive on its stderr pipe after its exit event.
    // Point to the app's error only when it printed one (a worker that never listened may have said nothing).
    const pointer = (appSaid: string | undefined) => appSaid === undefined ? ''
      : appSaid ? " (see the app's error above)" : ' (the app printed nothing on stderr)';
    const said = (appSaid: string | undefined) => process.stderr.write(`superv: ${err.message}${pointer(appSaid)}; superv is halting\n`);
    const appError = h ? stderrHead(h, 1) : Promise.resolve(undefined);
    void Promise.all([appError, this.output?.drained(1000)]).then(([a]) => said(a));
    for (const h of this.workers.values()) h.kill('halt');
    this.stopDeadline = Date.now() + 1000;
    this.checkStopped();
  }

  private exit(): void {
    if (this.exited) return;
    this.exited = true;
    this.schedule(0);
    this.keeper.close();
    this.log.info({ event: 'master-exit', code: this.exitCode, uptimeMs: Date.now() - this.startedAt }, 'superv stopped');
    this.resolveDone(this.exitCode);
  }
}

/** Bytes each V8 heap space holds from the OS (new, old, code, large objects…): where a master's heap total went. */
function heapSpaces(): Record<string, number> {
  return Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name.replace(/_space$/, ''), sp.space_size]));
}
