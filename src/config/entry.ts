// What `superv start X` runs: the one place that decides which file X names. pm2 users run `next start` as
// `pm2 start node_modules/next/dist/bin/next -- start` (an extensionless script with a node shebang) or by the
// package's binary name; both must work here, and anything Node cannot run must be refused with why.

import { closeSync, existsSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { SupervError } from '../errors';

/** The extensions Node runs as JavaScript (TypeScript ones through type stripping or a loader in node_args). */
export const JS_EXTENSIONS: readonly string[] = ['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts'];

/** What a runnable entry looks like, for messages. */
const EXPECTED = 'expected a JavaScript file (.js, .cjs, .mjs, .ts, .cts or .mts), a script with a node shebang, or a package binary name from node_modules/.bin';

/** The first bytes of a file: enough for a shebang line. */
function head(file: string, bytes = 256): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.subarray(0, readSync(fd, buf, 0, bytes, 0)).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

/** `#!/usr/bin/env node`, `#!/usr/bin/node --flag`, `#!/usr/bin/env -S node --x`: a node script. */
export function hasNodeShebang(text: string): boolean {
  const first = text.split('\n', 1)[0]!;
  return /^#!\s*\S*\/(env\s+(-\S+\s+)*)?node(js)?(\s|$)/.test(first);
}

/** Why `file` (which exists) is not something superv can run in a worker, or undefined when it is. */
export function notRunnable(file: string): string | undefined {
  const st = statSync(file);
  if (!st.isFile()) return `${file} is not a file; ${EXPECTED}`;
  if (JS_EXTENSIONS.includes(extname(file))) return undefined;
  if (extname(file) === '' && hasNodeShebang(head(file))) return undefined;
  const first = head(file);
  const what = first.startsWith('\x7fELF') ? 'a native executable'
    : first.startsWith('#!') ? `a script for ${first.split('\n', 1)[0]!.slice(2).trim()}` : 'not a JavaScript file';
  return `${file} is ${what}; superv runs Node.js apps in cluster workers: ${EXPECTED}`;
}

/** `node_modules/.bin/NAME` in `dir` or the nearest parent that has one. */
function findBin(name: string, dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const bin = join(d, 'node_modules', '.bin', name);
    if (existsSync(bin)) return bin;
    if (dirname(d) === d) return undefined;
  }
}

/**
 * The file to run for `given` (as the user wrote it, relative to `baseDir`): the file itself, or, for a bare
 * name that is no file here, the JS file behind `node_modules/.bin/NAME` (npm links or shims it there).
 * Throws naming the value when it is no runnable JS; returns the resolved path unchanged when nothing
 * exists there, so the caller reports "not found".
 */
export function resolveEntry(given: string, baseDir: string): string {
  const path = resolve(baseDir, given);
  if (existsSync(path)) {
    const why = notRunnable(path);
    if (why) throw new SupervError('SUPERV_ERR_BAD_VALUE', 'app', why);
    return path;
  }
  const bare = /^[A-Za-z0-9@._-][A-Za-z0-9._-]*$/.test(given);
  const bin = bare ? findBin(given, baseDir) : undefined;
  if (bin === undefined) {
    if (extname(path) !== '' && !JS_EXTENSIONS.includes(extname(path))) {
      throw new SupervError('SUPERV_ERR_BAD_VALUE', 'app', `${path}: ${EXPECTED}`);
    }
    return path;
  }
  const target = realpathSync(bin);
  const why = notRunnable(target);
  if (why) throw new SupervError('SUPERV_ERR_BAD_VALUE', 'app', `${given} (${bin} → ${target}): ${why}`);
  return target;
}

/** The default name for an entry: the base name, or the binary's name for `superv start next`. */
export function entryName(given: string, resolved: string): string {
  const viaBin = !given.includes('/') && basename(resolved) !== given;
  return viaBin ? given : basename(resolved, extname(resolved));
}
