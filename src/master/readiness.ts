// When a booting worker counts as ready: the one decision, from worker_kind and wait_ready.
//   http                   → its first listen (node:cluster's `listening`), as before
//   background             → the app has loaded (the bootstrap's `booted` message): it serves no port
//   either, with wait_ready → the app's own `process.send('ready')`, pm2's message: an app with a main and
//                             an admin server, or one that warms a cache first, says when it is ready itself
// Every one of them is bounded by listen_timeout (0 = wait forever).

import type { Config } from '../config/settings';

export type ReadyOn = 'listen' | 'boot' | 'signal';

export function readyOn(config: Pick<Config, 'workerKind' | 'waitReady'>): ReadyOn {
  if (config.waitReady) return 'signal';
  return config.workerKind === 'background' ? 'boot' : 'listen';
}

/** The message an app sends (process.send) to say it is ready under wait_ready: the same as pm2's. */
export const APP_READY_MESSAGE = 'ready';

/** What a worker not ready within listen_timeout failed to do, for the log and the halt message. */
export function notReadyWhat(on: ReadyOn): string {
  switch (on) {
    case 'listen': return 'did not listen';
    case 'boot': return 'did not finish loading';
    case 'signal': return "did not send process.send('ready') (wait_ready)";
  }
}

/**
 * A booting worker's loop may be blocked this long before it is dumped and killed as stuck. Loading an app is
 * synchronous (every require), and on a loaded host that takes seconds, so `timeout` alone, made for request
 * handlers, would kill healthy boots: at least BOOT_STALL_MIN_MS. And at most half of listen_timeout, so the
 * dump comes before listen_timeout ends the boot (with the defaults, 30 s and 30 s: after 15 s).
 */
export const BOOT_STALL_MIN_MS = 10_000;

export function bootStallAfterMs(config: Pick<Config, 'timeout' | 'listenTimeout'>): number {
  const floor = Math.max(config.timeout, BOOT_STALL_MIN_MS);
  return config.listenTimeout > 0 ? Math.min(floor, config.listenTimeout / 2) : floor;
}
