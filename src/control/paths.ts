// Where a supervisor's control socket and pid file live: a per-user 0700 directory, keyed by --name.
// Another user must not be able to reach the socket, so a directory we do not own, or that others can
// write, is refused rather than used.

import { mkdirSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SUPERV_RUN_DIR) return env.SUPERV_RUN_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'superv');
  return join(tmpdir(), `superv-${process.getuid?.() ?? 'user'}`);
}

/** Creates the run dir 0700 if missing; throws if it is not safely ours. */
export function ensureRunDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`run dir ${dir} belongs to uid ${st.uid}, not to us (${uid})`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

export function socketPath(runDir: string, name: string): string {
  return join(runDir, `${name}.sock`);
}

export function pidPath(runDir: string, name: string): string {
  return join(runDir, `${name}.pid`);
}
