// Writing a (redacted) dump to disk: private, atomic, rotated.
//
// - The dir is created 0700 and checked before every write (src/util/files.ts): no symlink is followed, a dir
//   that is not ours or that others can write is refused, and superv never chmods a dir it did not create.
// - The file is written by writeFileAtomic: a hidden temp name in the same dir (O_EXCL|O_NOFOLLOW, 0600: never
//   readable by others, not even for a moment), fsynced, then renamed: a reader sees a whole dump or none.
//   Names are unique per (millisecond, worker pid, reason), so a rename never replaces another dump.
// - Rotation keeps the newest `keep` dumps of the dir. It only ever deletes files whose name is a dump name, and
//   temp files older than an hour (left by a crash mid-write). It is best effort: the dump is safe on disk by
//   then, and a failed delete must not make the caller report the dump as lost.

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Dump } from '../dump/types';
import { dumpFileName, listDumps } from '../dump/files';
import { ensurePrivateDir, writeFileAtomic } from '../util/files';

const TEMP_NAME = /^\..+\.tmp$/;
const STALE_TEMP_MS = 60 * 60 * 1000;

/** Deletes the oldest dumps beyond `keep` and stale temp files. Returns the deleted paths; throws on failure. */
export async function pruneDumps(dir: string, keep: number): Promise<string[]> {
  const dumps = await listDumps(dir);
  const doomed = dumps.slice(0, Math.max(0, dumps.length - Math.max(1, keep))).map((d) => d.path);
  for (const name of await fs.readdir(dir)) {
    if (!TEMP_NAME.test(name)) continue;
    const st = await fs.lstat(join(dir, name)).catch(() => undefined);
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
  const final = join(dir, dumpFileName(dump));
  try {
    ensurePrivateDir(dir);
    // Make room first, so the directory never holds more than `keep` dumps, not even for a moment.
    await writeFileAtomic(final, JSON.stringify(dump, null, 2) + '\n', 0o600, () => pruneDumps(dir, keep - 1).catch(() => undefined));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cannot write dump ${final}: ${err.message}`, { cause: e }), { code: err.code });
  }
  await pruneDumps(dir, keep).catch(() => undefined);
  return final;
}
