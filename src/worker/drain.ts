// Graceful drain of a worker, built to lose no request under keep-alive load:
//   1. stop accepting: close the listening handle (in a cluster worker this tells the master to route no
//      more connections here) WITHOUT http.Server#close's immediate closeIdleConnections — a connection
//      that looks idle may have the client's next request already on the wire, and closing it then
//      is the classic keep-alive reset that loses requests during reloads;
//   2. every response from now on, and every in-flight one not yet started, carries `Connection: close`,
//      so busy connections end cleanly after their current response;
//   3. a connection is closed as idle only when it has received no byte for IDLE_GRACE_MS;
//   4. once no connection and no request is left, the app's own shutdown code runs (endWorker): an app
//      with SIGTERM handlers gets SIGTERM, as gunicorn and pm2 send it, and the process ends when the app is
//      done; an app without any is exited. The master enforces graceful_timeout on all of it.

import cluster from 'node:cluster';
import { subscribe } from 'node:diagnostics_channel';
import { Server as NetServer, type Server, type Socket } from 'node:net';
import type { RequestTracker } from './tracker';
import { guarded } from './guard';

const POLL_MS = 50;
const IDLE_GRACE_MS = 500;

export class Drainer {
  private readonly servers = new Set<Server>();
  /** Connections of the app's servers, learned per connection (not per request). */
  private readonly sockets = new Set<Socket>();
  private draining = false;

  constructor(private readonly tracker: RequestTracker) {}

  /** Learns of every server the app starts listening, through Node's own tracing channel. */
  install(): void {
    subscribe('tracing:net.server.listen:asyncEnd', guarded('learning a server', (m: unknown) => {
      const server = (m as { server: Server }).server;
      if (this.servers.has(server)) return;
      this.servers.add(server);
      server.on('connection', guarded('learning a connection', (socket: Socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
      }));
    }));
  }

  /** Starts the drain; `onIdle` runs once no connection is open and no request is in flight. */
  start(onIdle: () => void): void {
    if (this.draining) return;
    this.draining = true;
    this.tracker.closing = true;
    this.tracker.forEachResponse((res) => { if (!res.headersSent) res.shouldKeepAlive = false; });
    for (const s of this.servers) {
      // net.Server#close, not http.Server#close: see step 1 above.
      if (s.listening) NetServer.prototype.close.call(s);
    }
    const lastBytes = new Map<Socket, { bytes: number; since: number }>();
    const poll = setInterval(guarded('the drain', () => {
      const now = Date.now();
      const busy = this.tracker.busySockets();
      for (const sock of this.sockets) {
        const prev = lastBytes.get(sock);
        if (busy.has(sock) || !prev || prev.bytes !== sock.bytesRead) {
          lastBytes.set(sock, { bytes: sock.bytesRead, since: now });
        } else if (now - prev.since >= IDLE_GRACE_MS) {
          sock.destroySoon();
        }
      }
      if (this.tracker.inflight <= 0 && this.sockets.size === 0) {
        clearInterval(poll);
        onIdle();
      }
    }), POLL_MS);
  }
}

/**
 * The end of a drained worker. `ours` is superv's own SIGTERM listener; `appSignalled` says whether a SIGTERM
 * already reached the app's handlers (a TERM sent to the whole group by systemd or docker stop).
 */
export function endWorker(ours: (...args: never[]) => void, appSignalled: boolean): void {
  const appHandlers = process.listeners('SIGTERM').filter((l) => l !== ours).length;
  if (appHandlers === 0) process.exit(0);
  // A real signal, not a direct call: the app's handlers run as they would under `kill`, in their own tick.
  if (!appSignalled) process.kill(process.pid, 'SIGTERM');
  // Then the process ends by itself once the app's handlers have closed what they hold (DB pools, timers),
  // or when a handler calls process.exit. cluster's own disconnect marks the exit as intended (a bare
  // process.disconnect() would make cluster exit at once); it closes the IPC channel that keeps a worker alive.
  cluster.worker?.disconnect();
}
