// `--daemon`: the master detaches into the background (its own session, output to a log file) and the
// command returns once it is serving, or fails with the log's tail if it did not start. Foreground stays
// the default: systemd, Docker and Kubernetes want the process in front.

import { spawn } from 'node:child_process';
import { closeSync, readFileSync } from 'node:fs';
import type { Config } from '../config/settings';
import { request } from '../control/client';
import { logFileOf } from '../master/log-file';
import { runDirOf } from '../master/master';
import { DAEMON_CHILD_ENV } from '../protocol';
import { SupervError } from '../errors';
import { openAppendSafe, UnsafePathError } from '../util/files';

export async function daemonize(config: Config, argv: string[]): Promise<number> {
  const logFile = logFileOf(config);
  // Appended to without following a symlink, and only if it is a plain file of ours (util/files.ts).
  let fd: number;
  try {
    fd = openAppendSafe(logFile, 0o600);
  } catch (err) {
    if (err instanceof UnsafePathError) throw new SupervError('SUPERV_ERR_UNSAFE_PATH', `log_file: ${err.message}`);
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'log_file', `${logFile}: ${(err as Error).message}`);
  }
  const child = spawn(process.execPath, [process.argv[1]!, 'start', ...argv], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, [DAEMON_CHILD_ENV]: '1' },
  });
  closeSync(fd);
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => { exited = code ?? 1; });
  const deadline = Date.now() + config.listenTimeout + 5000;
  while (Date.now() < deadline && exited === null) {
    const up = await request(runDirOf(config), config.name, { cmd: 'status' }, 1000).then(
      (s) => (s as { phase: string }).phase === 'running', () => false);
    if (up) {
      process.stdout.write(`superv: ${config.name} started in the background (pid ${child.pid}), log ${logFile}\n`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  process.stderr.write(`superv: ${config.name} did not start${exited !== null ? ` (exit code ${exited})` : ''}; the end of ${logFile}:\n${tail}\n`);
  return 1;
}
