// The CLI's side of the control socket: one request, one reply, bounded in time.

import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { SupervError } from '../errors';
import { readLines, writeLine } from '../ndjson';
import { socketPath } from './paths';
import type { ControlReply, ControlRequest } from './protocol';

export function request(runDir: string, name: string, req: ControlRequest, timeoutMs = 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath(runDir, name));
    const timer = setTimeout(() => { sock.destroy(); reject(new SupervError('SUPERV_ERR_CONTROL', `no reply from ${name} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? new SupervError('SUPERV_ERR_NOT_RUNNING', name)
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

/** Names of supervisors with a socket in the run dir (live or stale: `ls` asks each). */
export function socketNames(runDir: string): string[] {
  try {
    return readdirSync(runDir).filter((f) => f.endsWith('.sock')).map((f) => f.slice(0, -5)).sort();
  } catch {
    return [];
  }
}
