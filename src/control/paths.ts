// Where a supervisor's control socket and pid file live: a per-user 0700 directory, keyed by --name.
// Another user must not be able to reach the socket, so a directory we do not own, or that others can
// write, or a symlink, is refused rather than used (src/util/files.ts).

import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePrivateDir } from '../util/files';

export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SUPERV_RUN_DIR) return env.SUPERV_RUN_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'superv');
  return join(tmpdir(), `superv-${process.getuid?.() ?? 'user'}`);
}

/** Creates the run dir 0700 if missing; throws UnsafePathError if it is not safely ours (never chmods it). */
export function ensureRunDir(dir: string): string {
  ensurePrivateDir(dir);
  return dir;
}

export function socketPath(runDir: string, name: string): string {
  return join(runDir, `${name}.sock`);
}

export function pidPath(runDir: string, name: string): string {
  return join(runDir, `${name}.pid`);
}
