// Works around a leak in Node's cluster round-robin: the master accepts each connection and hands it to a
// worker with a `newconn` message, keeping its own copy until the worker acknowledges. A worker that is
// stuck (or killed) never acknowledges, and Node keeps that connection open in the master forever: one
// leaked fd per stuck worker, and a client left hanging with no answer and no close. (The soak found it:
// master fds grew by one per killed worker.)
//
// So the master watches its own workers' handoffs: it notes each connection sent with `newconn` and
// drops the note on the acknowledgement; when the worker exits, it closes the connections still noted,
// so the client sees the connection end instead of waiting forever.

import type { Worker } from 'node:cluster';

type ClosableHandle = { close(): void };
type ClusterMessage = { cmd?: unknown; act?: unknown; seq?: unknown; ack?: unknown };
type Send = (message: unknown, handle?: unknown, ...rest: unknown[]) => boolean;

export function guardHandoffs(worker: Worker): void {
  const proc = worker.process as unknown as { send: Send; on(ev: string, fn: (m: unknown) => void): void };
  const pending = new Map<number, ClosableHandle>();
  const send = proc.send.bind(proc);
  proc.send = (message: unknown, handle?: unknown, ...rest: unknown[]) => {
    const m = message as ClusterMessage;
    if (m?.cmd === 'NODE_CLUSTER' && m.act === 'newconn' && typeof m.seq === 'number' && handle && typeof (handle as ClosableHandle).close === 'function') {
      pending.set(m.seq, handle as ClosableHandle);
    }
    return send(message, handle, ...rest);
  };
  proc.on('internalMessage', (message: unknown) => {
    const m = message as ClusterMessage;
    if (m?.cmd === 'NODE_CLUSTER' && typeof m.ack === 'number') pending.delete(m.ack);
  });
  worker.once('exit', () => {
    for (const h of pending.values()) {
      try { h.close(); } catch { /* already closed */ }
    }
    pending.clear();
  });
}
