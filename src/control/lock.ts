// One master per name: an exclusive lock on RUN_DIR/NAME.lock, held for the master's whole life.
//
// Why flock(2) through a child `flock(1)`: Node's fs has no flock. A flock lock belongs to the open file
// description, not to the process that took it, so a short-lived `flock --nonblock 3` child, given our open fd as
// its fd 3, locks OUR description and exits; the lock stays until the master's fd is closed, which the kernel
// does when the master dies in any way (SIGKILL included). There is no stale lock to judge, no pid to trust,
// and two masters started in the same instant cannot both win (the kernel decides). Probing the socket instead
// (check, unlink, listen) let two masters up side by side, and one whose socket was deleted was invisible.
// The fd is O_CLOEXEC (libuv opens every fd so), so workers and hooks never inherit the lock.
//
// Where flock(1) is missing (util-linux and busybox both ship it, so rarely), the fallback is an O_EXCL lock file
// holding the pid: a new master takes it over only when that pid is dead. Its takeover of a stale file has a
// narrow race the flock path does not have; superv says so at start.
//
// The lock file also holds the master's pid, so a client can say "not answering (pid N)" instead of
// "not running" when the socket is gone or silent.

import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsc, fstatSync, ftruncateSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SupervError } from '../errors';
import { openOwnFile, tempNameFor } from '../util/files';

export function lockPath(runDir: string, name: string): string {
  return join(runDir, `${name}.lock`);
}

/** The pid written in the lock file, when there is one and that process exists. */
export function lockHolder(runDir: string, name: string): number | undefined {
  let pid: number;
  try {
    const fd = openSync(lockPath(runDir, name), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try { pid = Number.parseInt(readFileSync(fd, 'utf8'), 10); } finally { closeSync(fd); }
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface MasterLock {
  readonly path: string;
  /** `flock` or `pid-file` (the fallback). */
  readonly how: 'flock' | 'pid-file';
  /** Whether the lock file at `path` is still the one this master locked (someone may have deleted it). */
  stillHeld(): boolean;
  /** Ends the lock; `unlink` false when its name already belongs to a newer lock file of ours. */
  release(unlink?: boolean): void;
}

type FlockResult = 'locked' | 'busy' | 'no-flock';

function flockFd(fd: number): FlockResult {
  const r = spawnSync('flock', ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], timeout: 10_000 });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') return 'no-flock';
    throw r.error;
  }
  if (r.status === 0) return 'locked';
  if (r.status === 1) return 'busy';
  // busybox's flock does not know the long options.
  const r2 = spawnSync('flock', ['-n', '-x', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], timeout: 10_000 });
  if (r2.status === 0) return 'locked';
  if (r2.status === 1) return 'busy';
  throw new Error(`flock failed: ${String(r.stderr).trim() || `exit ${r.status}`}`);
}

function inUse(runDir: string, name: string): SupervError {
  return new SupervError('SUPERV_ERR_NAME_IN_USE', name, String(lockHolder(runDir, name) ?? '?'));
}

/** Takes the lock for `name` or throws SUPERV_ERR_NAME_IN_USE (with the holder's pid) / UnsafePathError. */
export function acquireLock(runDir: string, name: string): MasterLock {
  const path = lockPath(runDir, name);
  for (let attempt = 0; attempt < 3; attempt++) {
    const fd = openOwnFile(path);
    let res: FlockResult;
    try {
      res = flockFd(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (res === 'no-flock') { closeSync(fd); return pidFileLock(runDir, name); }
    if (res === 'busy') { closeSync(fd); throw inUse(runDir, name); }
    // The previous holder may have unlinked the file between our open and our lock: then we hold a lock on a
    // name no one else can find, and must take the lock again on the file that is there now.
    let same = false;
    try { same = statSync(path).ino === fstatSync(fd).ino; } catch { /* gone */ }
    if (!same) { closeSync(fd); continue; }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
    const ino = fstatSync(fd).ino;
    return {
      path, how: 'flock',
      stillHeld: () => { try { return statSync(path).ino === ino; } catch { return false; } },
      // Unlink while still holding the lock, then close: a newcomer either finds no file or a new one.
      release: (unlink = true) => {
        if (unlink) { try { unlinkSync(path); } catch { /* gone */ } }
        try { closeSync(fd); } catch { /* closed */ }
      },
    };
  }
  throw inUse(runDir, name);
}

/** The fallback without flock(1): link(2) a file holding our pid to the lock name, atomically, or find it held. */
function pidFileLock(runDir: string, name: string): MasterLock {
  const path = lockPath(runDir, name);
  for (let attempt = 0; attempt < 2; attempt++) {
    const temp = tempNameFor(path);
    const fd = openSync(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    try {
      linkSync(temp, path);
      unlinkSync(temp);
      const ino = statSync(path).ino;
      return {
        path, how: 'pid-file',
        stillHeld: () => { try { return statSync(path).ino === ino; } catch { return false; } },
        release: (unlink = true) => { if (unlink) { try { unlinkSync(path); } catch { /* gone */ } } },
      };
    } catch (err) {
      unlinkSync(temp);
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (lockHolder(runDir, name) !== undefined) throw inUse(runDir, name);
    try { unlinkSync(path); } catch { /* someone else took it over */ }
  }
  throw inUse(runDir, name);
}
