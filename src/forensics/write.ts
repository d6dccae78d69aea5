// Writing a (redacted) dump to disk: private, atomic, rotated.
//
// - The dir is created 0700. An existing dir looser than that is tightened only when this process's user owns
//   it: a dir someone else set up (a shared log volume) is theirs to configure, and as root we would otherwise
//   silently change another user's dir.
// - The file is written to a hidden temp name in the same dir (`wx`, 0600: never readable by others, not even
//   for a moment), fsynced, then renamed: a reader sees a whole dump or none. Names are unique per
//   (millisecond, worker pid, reason), so a rename never replaces another dump.
// - Rotation keeps the newest `keep` dumps of the dir. It only ever deletes files whose name is a dump name, and
//   temp files older than an hour (left by a crash mid-write). It is best effort: the dump is safe on disk by
//   then, and a failed delete must not make the caller report the dump as lost.

import { constants as fsc, promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Dump } from './types';

/** `2026-11-28T15-30-01.123Z-<name>-w<id>-<pid>-<reason>.json`: sorts by incident time under `ls`. */
export const DUMP_NAME = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-.+-w\d+-\d+-[a-z]+\.json$/;
const TEMP_NAME = /^\..+\.tmp$/;
const STALE_TEMP_MS = 60 * 60 * 1000;

function safePart(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || '_';
}

export function dumpFileName(dump: Dump): string {
  const t = new Date(dump.time);
  const when = (Number.isNaN(t.getTime()) ? new Date() : t).toISOString().replace(/:/g, '-');
  const reason = /^[a-z]+$/.test(dump.reason) ? dump.reason : 'unknown';
  return `${when}-${safePart(dump.supervisor.name)}-w${dump.worker.id}-${dump.worker.pid}-${reason}.json`;
}

export interface DumpFile {
  name: string;
  path: string;
}

/** The dumps in `dir`, oldest first (newest last), by the time in their names. */
export async function listDumps(dir: string): Promise<DumpFile[]> {
  const names = await fs.readdir(dir);
  return names
    .filter((n) => DUMP_NAME.test(n))
    .sort()
    .map((name) => ({ name, path: join(dir, name) }));
}

async function privateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.stat(dir);
  if (!st.isDirectory()) throw new Error('not a directory');
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) await fs.chmod(dir, 0o700);
}

// Makes the rename itself durable; some filesystems refuse fsync on a dir, and the data is already synced.
async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY).catch(() => undefined);
  await fh?.sync().catch(() => undefined);
  await fh?.close().catch(() => undefined);
}

/** Deletes the oldest dumps beyond `keep` and stale temp files. Returns the deleted paths; throws on failure. */
export async function pruneDumps(dir: string, keep: number): Promise<string[]> {
  const dumps = await listDumps(dir);
  const doomed = dumps.slice(0, Math.max(0, dumps.length - Math.max(1, keep))).map((d) => d.path);
  for (const name of await fs.readdir(dir)) {
    if (!TEMP_NAME.test(name)) continue;
    const st = await fs.stat(join(dir, name)).catch(() => undefined);
    if (st?.isFile() && Date.now() - st.mtimeMs > STALE_TEMP_MS) doomed.push(join(dir, name));
  }
  for (const p of doomed) {
    await fs.unlink(p).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
  return doomed;
}

/**
 * Writes `dump` into `dir` and keeps at most `keep` dumps there (at least 1: never the one just written).
 * Resolves with the dump's path; rejects with an Error naming the path when the dump could not be written.
 */
/** Writes into one dir run one after another, so `keep` holds even when dumps arrive together. */
const queues = new Map<string, Promise<unknown>>();

export function writeDump(dir: string, dump: Dump, keep: number): Promise<string> {
  const prev = queues.get(dir) ?? Promise.resolve();
  const next = prev.then(() => writeOne(dir, dump, keep), () => writeOne(dir, dump, keep));
  const tail = next.catch(() => undefined);
  queues.set(dir, tail);
  void tail.then(() => { if (queues.get(dir) === tail) queues.delete(dir); });
  return next;
}

async function writeOne(dir: string, dump: Dump, keep: number): Promise<string> {
  const name = dumpFileName(dump);
  const final = join(dir, name);
  const temp = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  let created = false;
  try {
    await privateDir(dir);
    const fh = await fs.open(temp, 'wx', 0o600);
    created = true;
    try {
      await fh.writeFile(JSON.stringify(dump, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    // Make room first, so the directory never holds more than `keep` dumps, not even for a moment.
    await pruneDumps(dir, keep - 1).catch(() => undefined);
    await fs.rename(temp, final);
    created = false;
    await syncDir(dir);
  } catch (e) {
    if (created) await fs.unlink(temp).catch(() => undefined);
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cannot write dump ${final}: ${err.message}`, { cause: e }), { code: err.code });
  }
  await pruneDumps(dir, keep).catch(() => undefined);
  return final;
}
