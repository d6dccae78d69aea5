// The CLI's side of the control socket: one request, one reply, bounded in time. When no reply comes, the
// lock file (lock.ts) tells a master that is running but not answering (busy, stopped, its socket deleted)
// from one that is not running at all.

import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { SupervError } from '../errors';
import { readLines, writeLine } from '../ndjson';
import { lockHolder } from './lock';
import { socketPath } from './paths';
import type { ControlReply, ControlRequest } from './protocol';

/** The default bound of a request; `reload` and `dump` pass longer ones. */
export const REQUEST_TIMEOUT_MS = 15_000;

/** The error for a master that did not answer: "not answering (pid N)" when its lock is held, else "not running". */
function silent(runDir: string, name: string, why: string): SupervError {
  const pid = lockHolder(runDir, name);
  return pid !== undefined
    ? new SupervError('SUPERV_ERR_NOT_ANSWERING', name, String(pid), why)
    : new SupervError('SUPERV_ERR_NOT_RUNNING', name);
}

export function request(runDir: string, name: string, req: ControlRequest, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath(runDir, name));
    const timer = setTimeout(() => { sock.destroy(); reject(silent(runDir, name, `no reply within ${timeoutMs} ms`)); }, timeoutMs);
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' ? silent(runDir, name, 'its control socket is missing')
        : err.code === 'ECONNREFUSED' ? silent(runDir, name, 'its control socket refuses connections')
          : new SupervError('SUPERV_ERR_CONTROL', err.message));
    });
    sock.once('connect', () => writeLine(sock, req));
    readLines(sock, (m) => {
      clearTimeout(timer);
      sock.end();
      const reply = m as ControlReply;
      if (reply.ok) resolve(reply.result);
      else reject(new SupervError('SUPERV_ERR_CONTROL', reply.error));
    }, (why) => { clearTimeout(timer); sock.destroy(); reject(new SupervError('SUPERV_ERR_CONTROL', why)); });
  });
}

/** Names of supervisors with a socket or a lock in the run dir (live, silent or stale: `ls` asks each). */
export function socketNames(runDir: string): string[] {
  try {
    const names = readdirSync(runDir).filter((f) => f.endsWith('.sock') || f.endsWith('.lock'))
      .map((f) => f.slice(0, f.lastIndexOf('.')));
    return [...new Set(names)].sort();
  } catch {
    return [];
  }
}
