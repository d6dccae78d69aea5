// One worker as the master sees it: a typed state machine and the latest heartbeat.
//   booting → ready → draining → dead
//   booting | ready | draining → dumping → dead (the dump-then-kill path)

import type { Worker } from 'node:cluster';
import type { Heartbeat } from '../protocol';
import type { WatchdogChannel } from './watchdog-channel';

export type WorkerState = 'booting' | 'ready' | 'draining' | 'dumping' | 'dead';

export class WorkerHandle {
  state: WorkerState = 'booting';
  readonly spawnedAt = Date.now();
  readyAt = 0;
  /** When the last heartbeat arrived; starts at spawn so a worker that never beats still times out. */
  lastHeartbeatAt = Date.now();
  heartbeat: Heartbeat | undefined;
  /** Why the master ended this worker, when it did (so its exit is not counted as a crash). */
  endedBy: 'timeout' | 'listen-timeout' | 'drain' | 'reload' | 'max-requests' | 'memory' | 'stop' | 'halt' | undefined;
  lastDump: string | undefined;
  /** Whether this worker was part of the first start, whose failure halts the master. */
  readonly firstStart: boolean;
  /** A replacement is booting for this worker (reload, recycling): it no longer counts toward `workers`. */
  retiring = false;
  /** A loop query to the watchdog is in flight (one at a time). */
  askingLoop = false;
  /** A limit (max_requests, max_memory) already fired for this worker: act once. */
  limitHit = false;
  /** This worker's own max_requests, jitter included (0 = never recycle). */
  maxRequests = 0;
  /** Resolves true once listening, false if it died or timed out first. */
  readonly ready: Promise<boolean>;
  settleReady: (ok: boolean) => void = () => undefined;

  constructor(readonly id: number, readonly worker: Worker, readonly channel: WatchdogChannel | undefined, firstStart: boolean) {
    this.firstStart = firstStart;
    this.ready = new Promise((resolve) => {
      this.settleReady = (ok) => { resolve(ok); this.settleReady = () => undefined; };
    });
  }

  /** Counts toward the wanted number of workers. */
  get counted(): boolean {
    return this.alive && this.endedBy === undefined && !this.retiring;
  }

  get pid(): number {
    return this.worker.process.pid ?? 0;
  }

  uptimeMs(now = Date.now()): number {
    return now - this.spawnedAt;
  }

  /** Sends a signal unless the process is gone; never throws (ESRCH is the normal race with exit). */
  signal(sig: NodeJS.Signals): void {
    try {
      this.worker.process.kill(sig);
    } catch {
      // already dead
    }
  }

  get alive(): boolean {
    return this.state !== 'dead';
  }
}
