// The daemon's log file, owned by the master so that it can never fill the disk: rotated by size (log_max_size,
// log_keep) and reopened on SIGUSR1 (logrotate's `create` mode, as nginx and gunicorn do it). Every record
// reaches it through write() below, synchronously and whole, from the master's one thread: a rotation or a
// reopen happens between two records, so no line is lost, split across two files, or written twice.

import { closeSync, fstatSync, renameSync, rmSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/settings';
import { openAppendSafe } from '../util/files';

/** Where a daemon's output goes: log_file, else NAME.log in the directory it was started from. */
export function logFileOf(config: Pick<Config, 'logFile' | 'name'>): string {
  return config.logFile || resolve(`${config.name}.log`);
}

/** `app.log.3`: the rotated file `n` rotations old. */
export function rotatedName(path: string, n: number): string {
  return `${path}.${n}`;
}

export class LogFile {
  private fd: number;
  private size: number;

  /**
   * `maxSize` 0: never rotated by superv (an outside logrotate renames it and sends SIGUSR1). `report` hears of
   * a rotation or reopen that failed, on a later turn: it logs, and a log call from inside write() would recurse.
   */
  constructor(readonly path: string, private readonly maxSize: number, private readonly keep: number,
    private readonly report: (problem: string) => void = () => undefined) {
    this.fd = openAppendSafe(path, 0o600);
    this.size = fstatSync(this.fd).size;
  }

  /** One whole record (pino hands over each line, newline included, in one call). */
  write(chunk: string): boolean {
    const buf = Buffer.from(chunk, 'utf8');
    if (this.maxSize > 0 && this.size > 0 && this.size + buf.length > this.maxSize) this.rotate();
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
    return true;
  }

  /** NAME.log.{keep-1} → .{keep} …, NAME.log → .1, then a fresh NAME.log. */
  rotate(): void {
    try {
      rmSync(rotatedName(this.path, this.keep), { force: true });
      for (let n = this.keep - 1; n >= 1; n--) renameIfThere(rotatedName(this.path, n), rotatedName(this.path, n + 1));
      renameSync(this.path, rotatedName(this.path, 1));
    } catch (err) {
      // A read-only dir, a file of someone else's in the way: keep appending to the file we have rather than
      // lose lines, and try again after another maxSize bytes rather than at every line.
      this.size = 0;
      this.problem(`could not rotate ${this.path}: ${(err as Error).message}`);
      return;
    }
    this.reopen();
  }

  /** Opens the path again (SIGUSR1): after logrotate renamed it, the new file; otherwise the same one. */
  reopen(): void {
    let fd: number;
    try {
      fd = openAppendSafe(this.path, 0o600);
    } catch (err) {
      this.problem(`could not reopen ${this.path}: ${(err as Error).message}; still writing to the file it had open`);
      return;
    }
    closeSync(this.fd);
    this.fd = fd;
    this.size = fstatSync(fd).size;
  }

  private problem(msg: string): void {
    setImmediate(() => this.report(msg));
  }

  close(): void {
    closeSync(this.fd);
  }
}

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
