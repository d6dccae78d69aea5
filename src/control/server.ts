// The master's control socket: a 0600 unix socket in the 0700 run dir. A second master with the same
// name is refused; a stale socket from a crashed master is removed.

import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { SupervError } from '../errors';
import { readLines, writeLine } from '../ndjson';
import { MAX_REQUEST_BYTES, parseRequest, type ControlReply, type ControlRequest } from './protocol';
import { ensureRunDir, pidPath, socketPath } from './paths';

export type ControlHandler = (req: ControlRequest) => Promise<unknown>;

/** Whether something answers on `path` (a live master), as opposed to a stale file or nothing. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private server: Server | undefined;
  readonly socket: string;
  readonly pidFile: string;

  constructor(runDir: string, readonly name: string, pidFile?: string) {
    ensureRunDir(runDir);
    this.socket = socketPath(runDir, name);
    this.pidFile = pidFile || pidPath(runDir, name);
  }

  async listen(handler: ControlHandler): Promise<void> {
    if (await answers(this.socket)) {
      let pid = '?';
      try { pid = (await import('node:fs')).readFileSync(this.pidFile, 'utf8').trim(); } catch { /* unknown */ }
      throw new SupervError('SUPERV_ERR_NAME_IN_USE', this.name, pid);
    }
    rmSync(this.socket, { force: true });
    const server = createServer((conn) => {
      conn.on('error', () => undefined);
      // A client that connects and says nothing must not hold a descriptor forever.
      conn.setTimeout(10_000, () => conn.destroy());
      readLines(conn, (msg) => {
        void this.answer(handler, msg).then((reply) => writeLine(conn, reply));
      }, (why) => { writeLine(conn, { ok: false, error: why } satisfies ControlReply); conn.end(); }, MAX_REQUEST_BYTES, true);
    });
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socket, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    chmodSync(this.socket, 0o600);
    writeFileSync(this.pidFile, `${process.pid}\n`, { mode: 0o600 });
    this.server = server;
  }

  private async answer(handler: ControlHandler, raw: unknown): Promise<ControlReply> {
    const req = typeof raw === 'string' ? parseRequest(raw) : 'bad request';
    if (typeof req === 'string') return { ok: false, error: req };
    try {
      return { ok: true, result: await handler(req) };
    } catch (err) {
      return { ok: false, error: (err as Error).message ?? String(err) };
    }
  }

  close(): void {
    this.server?.close();
    rmSync(this.socket, { force: true });
    rmSync(this.pidFile, { force: true });
  }
}
