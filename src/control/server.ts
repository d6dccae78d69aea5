// The master's control socket: a 0600 unix socket in the 0700 run dir. Which master owns a name is decided by
// the lock (lock.ts), taken before anything else, not by probing the socket: a stale socket is then simply
// removed, and a socket that disappears while the master runs (a cleanup script, a tmpfiles rule) is noticed
// and bound again, so the master never runs unreachable.

import { lstatSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { readLines, writeLine } from '../ndjson';
import { checkAncestors, writeFileAtomicSync } from '../util/files';
import { acquireLock, type MasterLock } from './lock';
import { MAX_REQUEST_BYTES, parseRequest, type ControlReply, type ControlRequest } from './protocol';
import { ensureRunDir, pidPath, socketPath } from './paths';

export type ControlHandler = (req: ControlRequest) => Promise<unknown>;
/** How the server reports a lost and re-bound socket (the master's logger, at error level). */
export type SocketLostReport = (fields: Record<string, unknown>, msg: string) => void;

/** How often the master checks that its socket is still there: a lost one is unreachable for at most this. */
const SOCKET_CHECK_MS = 2000;

export class ControlServer {
  private server: Server | undefined;
  private lock: MasterLock | undefined;
  private socketIno = 0;
  private watch: NodeJS.Timeout | undefined;
  private handler: ControlHandler | undefined;
  readonly socket: string;
  readonly pidFile: string;

  constructor(private readonly runDir: string, readonly name: string, pidFile?: string, private readonly onLost: SocketLostReport = () => undefined) {
    ensureRunDir(runDir);
    this.socket = socketPath(runDir, name);
    this.pidFile = pidFile || pidPath(runDir, name);
  }

  /** Whether this master holds its name through flock or through the pid-file fallback. */
  get lockKind(): string | undefined {
    return this.lock?.how;
  }

  /** Takes the name (SUPERV_ERR_NAME_IN_USE if another master has it), then listens and writes the pid file. */
  async listen(handler: ControlHandler): Promise<void> {
    // The pid file's dir is checked first, so a refusal comes before the name is taken.
    if (this.pidFile !== pidPath(this.runDir, this.name)) checkAncestors(this.pidFile);
    this.lock = acquireLock(this.runDir, this.name);
    this.handler = handler;
    try {
      // We hold the lock: a socket file here is a crashed master's, not a live one's.
      rmSync(this.socket, { force: true });
      await this.bind();
      writeFileAtomicSync(this.pidFile, `${process.pid}\n`, 0o600);
    } catch (err) {
      this.close();
      throw err;
    }
    this.watch = setInterval(() => void this.checkSocket(), SOCKET_CHECK_MS).unref();
  }

  private async bind(): Promise<void> {
    const handler = this.handler!;
    const server = createServer((conn) => {
      conn.on('error', () => undefined);
      // A client that connects and says nothing must not hold a descriptor forever.
      conn.setTimeout(10_000, () => conn.destroy());
      readLines(conn, (msg) => {
        void this.answer(handler, msg).then((reply) => writeLine(conn, reply));
      }, (why) => { writeLine(conn, { ok: false, error: why } satisfies ControlReply); conn.end(); }, MAX_REQUEST_BYTES, true);
    });
    // Created 0600 by the umask, not chmodded after: chmod follows a symlink swapped in meanwhile.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socket, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    this.server = server;
    this.socketIno = lstatSync(this.socket).ino;
  }

  /** Takes the lock again if its file was deleted: otherwise a second master with this name could start. */
  private checkLock(): void {
    if (!this.lock || this.lock.stillHeld()) return;
    try {
      const fresh = acquireLock(this.runDir, this.name);
      this.lock.release(false);
      this.lock = fresh;
      this.onLost({ event: 'lock-lost', lock: fresh.path }, `lock file ${fresh.path} was removed while the master runs: taken again`);
    } catch (err) {
      this.onLost({ event: 'lock-lost', lock: this.lock.path, err: (err as Error).message },
        `lock file ${this.lock.path} was removed while the master runs and could not be taken again: ${(err as Error).message}`);
    }
  }

  /** Binds the socket again if it was removed or replaced (and re-takes a deleted lock). */
  private async checkSocket(): Promise<void> {
    if (!this.server) return;
    this.checkLock();
    let why: string | undefined;
    try {
      const st = lstatSync(this.socket);
      if (!st.isSocket() || st.ino !== this.socketIno) why = 'was replaced';
    } catch {
      why = 'was removed';
    }
    if (why === undefined) return;
    this.onLost({ event: 'control-socket-lost', socket: this.socket },
      `control socket ${this.socket} ${why} while the master runs: binding it again`);
    const old = this.server;
    this.server = undefined;
    // Closing a unix socket server unlinks its path (libuv): close the old one first, then bind the new one.
    await new Promise<void>((r) => old.close(() => r()));
    try {
      rmSync(this.socket, { force: true });
      await this.bind();
    } catch (err) {
      this.onLost({ event: 'control-socket-failed', socket: this.socket, err: (err as Error).message },
        `could not bind the control socket again: ${(err as Error).message}; the master is unreachable until restarted`);
    }
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
    if (this.watch) clearInterval(this.watch);
    this.server?.close();
    this.server = undefined;
    if (this.lock) {
      rmSync(this.socket, { force: true });
      rmSync(this.pidFile, { force: true });
      this.lock.release();
      this.lock = undefined;
    }
  }
}
