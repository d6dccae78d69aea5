// Every file and directory superv creates or writes goes through here: the dump dir and dumps, the route-stats
// file, the run dir, the lock and pid files, the daemon's log file, the HTML report. superv often runs as root,
// so a path that an untrusted user can influence must never redirect a write:
//
// - No symlink is followed at the leaf: directories are checked with lstat, files are opened with O_NOFOLLOW,
//   new files are created O_EXCL under a temp name and renamed into place (rename replaces a name, it does not
//   write through it). A hard link to someone else's file is caught by fstat (owner, link count).
// - The directories above are trusted only when no one else can change them: each ancestor must belong to
//   root or to us and not be writable by others (unless sticky, like /tmp), and a symlink among them must
//   belong to root or to us. Otherwise another user could swap a checked directory for a symlink between our
//   check and our write (the check would be worthless).
// - A directory superv writes into must belong to us and not be writable by group or others without the
//   sticky bit. superv creates missing directories 0700, and never chmods what it did not create: a dir
//   someone set up is theirs to configure; a loose one is refused, not silently tightened.
// Refusals throw UnsafePathError, which callers turn into a clear error at start (exit 2).

import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, promises as fs, realpathSync,
  renameSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';

/** A path superv refuses to write through; its message names the path and why. */
export class UnsafePathError extends Error {
  readonly code = 'EUNSAFE';
}

const myUid = (): number => process.getuid?.() ?? -1;
const trustedOwner = (uid: number): boolean => uid === 0 || uid === myUid();
const STICKY = 0o1000;

/** Writable by group or others, and not sticky: anyone in that set can rename our entries away. */
function looselyWritable(st: Stats): boolean {
  return (st.mode & 0o022) !== 0 && (st.mode & STICKY) === 0;
}

/**
 * Checks the directories above `path` (not `path` itself) and returns the real path of its parent. Throws
 * UnsafePathError when one of them could be changed by another user.
 */
export function checkAncestors(path: string): string {
  const abs = resolve(path);
  const parts = dirname(abs).split(sep).filter(Boolean);
  let real: string = sep;
  for (const part of parts) {
    const next = join(real, part);
    let st: Stats;
    try {
      st = lstatSync(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return join(real, ...parts.slice(parts.indexOf(part)));
      throw err;
    }
    if (st.isSymbolicLink()) {
      if (!trustedOwner(st.uid)) throw new UnsafePathError(`${next} (in ${abs}) is a symlink owned by uid ${st.uid}: refusing to follow it`);
      real = realpathSync(next);
      st = lstatSync(real);
    } else {
      real = next;
    }
    if (!st.isDirectory()) return join(real, ...parts.slice(parts.indexOf(part) + 1)); // ENOTDIR later, from the caller's own call
    if (!trustedOwner(st.uid)) throw new UnsafePathError(`${real} (above ${abs}) belongs to uid ${st.uid}: another user could redirect what superv writes there`);
    if (looselyWritable(st)) throw new UnsafePathError(`${real} (above ${abs}) is writable by others and not sticky (mode ${(st.mode & 0o7777).toString(8)})`);
  }
  return real;
}

/** Throws unless `st` (from lstat) is a directory we may write into. */
function checkOwnDir(path: string, st: Stats): void {
  if (st.isSymbolicLink()) throw new UnsafePathError(`${path} is a symlink: superv does not follow symlinks for the directories it writes`);
  if (!st.isDirectory()) throw Object.assign(new Error(`${path} is not a directory`), { code: 'ENOTDIR' });
  if (st.uid !== myUid() && myUid() !== -1) throw new UnsafePathError(`${path} belongs to uid ${st.uid}, not to superv's user (uid ${myUid()})`);
  if (looselyWritable(st)) throw new UnsafePathError(`${path} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)}): refusing to write there`);
}

export interface DirInfo {
  /** Whether superv created it now (0700). */
  created: boolean;
  /** Its permission bits. */
  mode: number;
}

/**
 * Makes sure `dir` exists as a directory of ours that no one else can change: creates missing components 0700
 * (never following a symlink: mkdir does not, and each one is lstat-checked), refuses an unsafe one.
 */
export function ensurePrivateDir(dir: string): DirInfo {
  const abs = resolve(dir);
  checkAncestors(abs);
  let created = false;
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const parent = dirname(abs);
    if (parent !== abs) {
      try { lstatSync(parent); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') ensurePrivateDir(parent); else throw e;
      }
    }
    try {
      mkdirSync(abs, { mode: 0o700 });
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    st = lstatSync(abs);
  }
  checkOwnDir(abs, st);
  return { created, mode: st.mode & 0o7777 };
}

const CREATE_EXCL = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;

/** `.NAME.RANDOM.tmp` next to `file`: hidden, unique, and matching the dump dir's stale-temp cleanup. */
export function tempNameFor(file: string): string {
  return join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
}

// Makes the rename itself durable; some filesystems refuse fsync on a dir, and the data is already synced.
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW).catch(() => undefined);
  await fh?.sync().catch(() => undefined);
  await fh?.close().catch(() => undefined);
}

/**
 * Writes `file` atomically: a temp file created O_EXCL|O_NOFOLLOW with `mode` (never readable by others, not
 * even for a moment), fsynced, renamed over `file` (a symlink there is replaced, not written through). A reader
 * sees the whole file or the previous one. `beforeRename` runs between the sync and the rename (dump rotation).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600,
  beforeRename?: () => Promise<unknown>): Promise<void> {
  const temp = tempNameFor(file);
  let created = false;
  try {
    const fh = await fs.open(temp, CREATE_EXCL, mode);
    created = true;
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await beforeRename?.();
    await fs.rename(temp, file);
    created = false;
    await syncDir(dirname(file));
  } finally {
    if (created) await fs.unlink(temp).catch(() => undefined);
  }
}

/** The synchronous form, for the pid file at start. */
export function writeFileAtomicSync(file: string, data: string, mode = 0o600): void {
  const temp = tempNameFor(file);
  const fd = openSync(temp, CREATE_EXCL, mode);
  try {
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (err) {
    try { unlinkSync(temp); } catch { /* gone */ }
    throw err;
  }
}

/** Throws unless the open file `fd` (at `path`) is a plain file of ours with one name. */
function checkOpenedFile(fd: number, path: string): void {
  const st = fstatSync(fd);
  if (!st.isFile()) throw new UnsafePathError(`${path} is not a regular file`);
  if (st.uid !== myUid() && myUid() !== -1) throw new UnsafePathError(`${path} belongs to uid ${st.uid}, not to superv's user (uid ${myUid()})`);
  // A hard link planted in a shared dir would let us write into the file it names (e.g. /etc/shadow).
  if (st.nlink > 1) throw new UnsafePathError(`${path} has ${st.nlink} hard links: refusing to write through one`);
}

/**
 * Opens `path` for appending (the daemon's log file): O_NOFOLLOW, created `mode` if missing, refused when it is
 * not a plain file of ours or when its directory could be changed by another user. Returns the fd.
 */
export function openAppendSafe(path: string, mode = 0o600): number {
  const abs = resolve(path);
  // A sticky shared dir (/tmp) passes: others cannot rename or replace a file of ours there.
  checkAncestors(abs);
  let fd: number;
  try {
    fd = openSync(abs, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafePathError(`${abs} is a symlink: superv does not write through symlinks`);
    throw err;
  }
  try {
    checkOpenedFile(fd, abs);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/**
 * Opens (creating if missing) a file of ours for reading and writing without following a symlink: the lock
 * file. Refused like openAppendSafe.
 */
export function openOwnFile(path: string, mode = 0o600): number {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_NOFOLLOW, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafePathError(`${path} is a symlink: superv does not write through symlinks`);
    throw err;
  }
  try {
    checkOpenedFile(fd, path);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/**
 * Whether superv can create a file in `dir` now: creates and removes a temp file. Returns the error message,
 * or undefined when it can (checked at start, so a lost dump is announced then, not at the first incident).
 */
export function probeWritable(dir: string): string | undefined {
  const temp = tempNameFor(join(dir, 'superv-write-check'));
  try {
    closeSync(openSync(temp, CREATE_EXCL, 0o600));
    unlinkSync(temp);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
