// Works around a leak in Node's cluster round-robin: the master accepts each connection and hands it to a
// worker with a `newconn` message, keeping its own copy until the worker acknowledges. A worker that is
// stuck (or killed) never acknowledges, and Node keeps that connection open in the master forever: one
// leaked fd per stuck worker, and a client left hanging with no answer and no close. (The soak found it:
// master fds grew by one per killed worker.)
//
// So the master watches its own workers' handoffs: it notes each connection sent with `newconn` and
// drops the note on the acknowledgement. When the worker is dead, a connection still noted was never touched by it: the worker acknowledges before it reads a
// byte. While the listen keeper holds that handle open, the connection is handed back to the handle as
// "not accepted", exactly as a worker that is shutting down answers, and a live worker or the replacement
// serves it; otherwise it is closed, so the client sees the connection end instead of waiting forever.

import type { Worker } from 'node:cluster';

/** How long a dead worker's channel may take to deliver its last messages before its handoffs are settled. */
const SETTLE_WAIT_MS = 1000;

type ClosableHandle = { close(): void };
type ClusterMessage = { cmd?: unknown; act?: unknown; seq?: unknown; ack?: unknown; key?: unknown };
type Send = (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean;

/** `keeps(key)`: whether the listening handle `key` stays open without this worker (listen-keeper.ts). */
export function guardHandoffs(worker: Worker, keeps: (key: string) => boolean = () => false): void {
  const proc = worker.process as unknown as { send: Send; connected: boolean; on(ev: string, fn: (m: unknown) => void): void; emit(ev: string, ...a: unknown[]): boolean };
  const pending = new Map<number, { key: string }>();
  const send = proc.send.bind(proc);
  proc.send = (message: unknown, handle?: unknown, ...rest: unknown[]) => {
    const m = message as ClusterMessage;
    if (m?.cmd === 'NODE_CLUSTER' && m.act === 'newconn' && typeof m.seq === 'number' && handle && typeof (handle as ClosableHandle).close === 'function') {
      pending.set(m.seq, { key: String(m.key) });
    }
    return send(message, handle, ...rest);
  };
  proc.on('internalMessage', (message: unknown) => {
    const m = message as ClusterMessage;
    if (m?.cmd === 'NODE_CLUSTER' && typeof m.ack === 'number') pending.delete(m.ack);
  });
  // Settled once the process is dead and the channel has delivered everything it sent (an acknowledgement
  // may still be in the pipe at exit), bounded by SETTLE_WAIT_MS.
  const exitedAt = { t: 0 };
  const settle = () => {
    if (pending.size === 0) return;
    if (proc.connected && Date.now() - exitedAt.t < SETTLE_WAIT_MS) { setTimeout(settle, 20).unref(); return; }
    for (const [seq, { key }] of pending) {
      pending.delete(seq);
      // Node removes a worker from its handles on 'disconnect', which it postpones while a handle it sent
      // is unacknowledged, that is forever here: without this, the dead worker stays a member, and the
      // round-robin handle would hand it the next queued connection, which would then be dropped.
      proc.emit('internalMessage', { cmd: 'NODE_CLUSTER', act: 'close', key }, undefined);
      // Answered through cluster's own callback, so Node forgets it too: "accepted" closes the master's copy.
      proc.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: !keeps(key) }, undefined);
    }
  };
  worker.once('exit', () => { exitedAt.t = Date.now(); settle(); });
}
