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
  endedBy: 'timeout' | 'listen-timeout' | 'drain' | 'stop' | 'halt' | undefined;
  lastDump: string | undefined;
  /** Whether this worker was part of the first start, whose failure halts the master. */
  readonly firstStart: boolean;

  constructor(readonly id: number, readonly worker: Worker, readonly channel: WatchdogChannel | undefined, firstStart: boolean) {
    this.firstStart = firstStart;
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
