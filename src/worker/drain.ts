// Graceful drain of a worker: stop accepting (closing a server in a cluster worker tells the master to
// route no more connections here), close idle keep-alive connections, answer busy ones with
// `Connection: close`, let in-flight requests finish, then exit. The master enforces the deadline.

import { subscribe } from 'node:diagnostics_channel';
import type { Server } from 'node:net';
import type { RequestTracker } from './tracker';

const POLL_MS = 50;

export class Drainer {
  private readonly servers = new Set<Server>();
  private draining = false;

  constructor(private readonly tracker: RequestTracker) {}

  /** Learns of every server the app starts listening, through Node's own tracing channel. */
  install(): void {
    subscribe('tracing:net.server.listen:asyncEnd', (m) => {
      const server = (m as { server: Server }).server;
      this.servers.add(server);
      server.once('close', () => this.servers.delete(server));
    });
  }

  get active(): boolean {
    return this.draining;
  }

  /** Starts the drain; `onIdle` runs once no server is open and no request is in flight. */
  start(onIdle: () => void): void {
    if (this.draining) return;
    this.draining = true;
    this.tracker.closing = true;
    this.tracker.forEachResponse((res) => { if (!res.headersSent) res.shouldKeepAlive = false; });
    for (const s of this.servers) {
      s.close();
      closeIdle(s);
    }
    const poll = setInterval(() => {
      // A busy keep-alive connection becomes idle once its response is sent; close it then.
      for (const s of this.servers) closeIdle(s);
      if (this.tracker.inflight <= 0 && this.servers.size === 0) {
        clearInterval(poll);
        onIdle();
      }
    }, POLL_MS);
  }
}

/** http and https servers both have closeIdleConnections; plain net servers do not. */
function closeIdle(s: Server): void {
  const maybe = s as Server & { closeIdleConnections?: () => void };
  if (typeof maybe.closeIdleConnections === 'function') maybe.closeIdleConnections();
}
