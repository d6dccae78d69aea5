// One worker as the master sees it: a typed state machine and the latest heartbeat.
//
//   booting ──→ ready ──→ draining ──┐
//      │          │          │       ├──→ killed ──→ reaped
//      └──────────┴──→ dumping ──────┘
//   (any state but reaped ──→ reaped: a worker can exit on its own at any time)
//
// The state changes only through the transition methods below, which refuse a move the table does not allow,
// and SIGKILL is sent from one place only: kill(). The arbiter decides *when*; this class keeps it consistent.

import type { Worker } from 'node:cluster';
import type { Heartbeat } from '../protocol';
import type { WatchdogChannel } from './watchdog-channel';

export type WorkerState = 'booting' | 'ready' | 'draining' | 'dumping' | 'killed' | 'reaped';

/** The first lines of what a worker wrote on stderr (its error, when it failed to boot), waiting briefly for the last bytes. */
export async function stderrHead(h: WorkerHandle, lines = 8, waitMs = 1000): Promise<string> {
  const tail = h.stderrTail;
  if (!tail) return '';
  await Promise.race([tail.ended, new Promise((r) => setTimeout(r, waitMs).unref())]);
  return tail.text().split('\n').filter((l) => l.trim() !== '').slice(0, lines).join('\n').slice(0, 2000);
}

/** The moves allowed out of each state (exit, to `reaped`, is always allowed and not listed). */
const NEXT: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  booting: ['ready', 'dumping', 'killed'],
  ready: ['draining', 'dumping', 'killed'],
  draining: ['dumping', 'killed'],
  dumping: ['killed'],
  killed: [],
  reaped: [],
};

export type EndedBy = 'timeout' | 'listen-timeout' | 'drain' | 'reload' | 'max-requests' | 'memory' | 'stop' | 'halt';

export class WorkerHandle {
  private current: WorkerState = 'booting';
  readonly spawnedAt = Date.now();
  readyAt = 0;
  /** When the last heartbeat arrived; starts at spawn so a worker that never beats still times out. */
  lastHeartbeatAt = Date.now();
  heartbeat: Heartbeat | undefined;
  /** The last heartbeat's promise of the next (longer while the worker is idle); 0 until the first. */
  heartbeatWithinMs = 0;
  /** Why the master ended this worker, when it did (so its exit is not counted as a crash). */
  endedBy: EndedBy | undefined;
  lastDump: string | undefined;
  /** Whether this worker was part of the first start, whose failure halts the master. */
  readonly firstStart: boolean;
  /** A replacement is booting for this worker (reload, recycling): it no longer counts toward `workers`. */
  retiring = false;
  /** A loop query to the watchdog is in flight (one at a time). */
  askingLoop = false;
  /** Killed for a blocked loop while booting: its exit backs off like a crash (the next boot would block too). */
  stalledBooting = false;
  /** A heap snapshot holds its main thread (on-demand.ts): its silence is no stall. */
  snapshotting = false;
  /** A limit (max_requests, max_memory) already fired for this worker: act once. */
  limitHit = false;
  /** This worker's own max_requests, jitter included (0 = never recycle). */
  maxRequests = 0;
  /** The tail of its stderr (crash.ts keeps it): what a failed boot said, for the reload's caller and the halt. */
  stderrTail: { text(): string; readonly ended: Promise<void> } | undefined;
  /** Resolves true once listening, false if it died or timed out first. */
  readonly ready: Promise<boolean>;
  settleReady: (ok: boolean) => void = () => undefined;

  /**
   * @param index its stable instance index, 0..N-1 (NODE_APP_INSTANCE): a replacement gets its predecessor's.
   */
  constructor(readonly id: number, readonly worker: Worker, readonly channel: WatchdogChannel | undefined, firstStart: boolean,
    readonly index = 0, readonly kind: 'http' | 'background' = 'http') {
    this.firstStart = firstStart;
    this.ready = new Promise((resolve) => {
      this.settleReady = (ok) => { resolve(ok); this.settleReady = () => undefined; };
    });
  }

  /** Counts toward the wanted number of workers. */
  get counted(): boolean {
    return this.running && this.endedBy === undefined && !this.retiring;
  }

  get pid(): number {
    return this.worker.process.pid ?? 0;
  }

  uptimeMs(now = Date.now()): number {
    return now - this.spawnedAt;
  }

  get state(): WorkerState {
    return this.current;
  }

  /** Not yet reaped: the process may still run (a killed worker is alive until its exit is seen). */
  get alive(): boolean {
    return this.current !== 'reaped';
  }

  /** Alive and not being killed: it can still be asked for a dump. */
  get running(): boolean {
    return this.current !== 'killed' && this.current !== 'reaped';
  }

  /** Serving or draining: the states whose dumps it may take on SIGUSR2. */
  get serving(): boolean {
    return this.current === 'ready' || this.current === 'draining';
  }

  /** The states whose event loop the master watches for a stall: booting too (a boot can block its loop). */
  get watched(): boolean {
    return this.current === 'booting' || this.serving;
  }

  private to(next: WorkerState): boolean {
    if (!NEXT[this.current].includes(next)) return false;
    this.current = next;
    return true;
  }

  /** booting → ready: the worker listens. False when it was not booting (a late or repeated event). */
  markReady(now = Date.now()): boolean {
    if (!this.to('ready')) return false;
    this.readyAt = now;
    this.lastHeartbeatAt = now;
    this.settleReady(true);
    return true;
  }

  /** ready → draining: it was asked to finish its requests and exit. */
  markDraining(): boolean {
    return this.to('draining');
  }

  /** → dumping: a dump is being taken before this worker is killed. */
  markDumping(): boolean {
    return this.to('dumping');
  }

  /**
   * The one kill path: → killed, then SIGKILL. Idempotent for a worker already killed (the signal is sent
   * again: harmless, and it covers a first signal lost to a race with exec); a reaped worker is left alone.
   */
  kill(endedBy?: EndedBy): void {
    if (this.current === 'reaped') return;
    if (endedBy !== undefined && this.endedBy === undefined) this.endedBy = endedBy;
    if (this.current !== 'killed') this.current = 'killed';
    this.settleReady(false);
    this.send('SIGKILL');
  }

  /** → reaped: its exit was seen. Always allowed. */
  markReaped(): void {
    this.current = 'reaped';
    this.settleReady(false);
  }

  /** Sends a signal other than SIGKILL (which goes through kill()); never throws. */
  signal(sig: Exclude<NodeJS.Signals, 'SIGKILL'>): void {
    this.send(sig);
  }

  /** ESRCH is the normal race with exit, so a failed send is ignored. */
  private send(sig: NodeJS.Signals): void {
    try {
      this.worker.process.kill(sig);
    } catch {
      // already dead
    }
  }
}
