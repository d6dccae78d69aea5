// Reading a daemon's log file for `superv logs`: its last N lines (reaching into NAME.log.1, .2 … when the
// current file has fewer), then, with -f, every line appended after, across rotations and reopens. Like
// `tail -F`, but no line is lost or shown twice around a rotation, even several between two polls: the old file
// is read until the master has written to a newer one (logrotate renames first and only then sends SIGUSR1, so
// the master writes on into the renamed file for a moment), then every file after it in turn.

import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { rotatedName } from '../master/log-file';

const CHUNK = 64 * 1024;

/** The last `n` lines of the first `size` bytes of `fd` that `keep` accepts, oldest first, reading from the end. */
function tailOf(fd: number, size: number, n: number, keep: (line: string) => boolean): string[] {
  const out: string[] = [];
  let end = size;
  let carry = Buffer.alloc(0);
  while (end > 0 && out.length < n) {
    const start = Math.max(0, end - CHUNK);
    const buf = Buffer.alloc(end - start);
    readSync(fd, buf, 0, buf.length, start);
    const all = Buffer.concat([buf, carry]);
    // Bytes before the first newline may be a line cut by the chunk's start: carried to the next (earlier) read.
    const nl = start > 0 ? all.indexOf(0x0a) : -1;
    if (start > 0 && nl < 0) { carry = all; end = start; continue; }
    const lines = all.subarray(nl + 1).toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0 && out.length < n; i--) {
      const line = lines[i]!;
      if (line === '' || !keep(line)) continue;
      out.push(line);
    }
    carry = start > 0 ? all.subarray(0, nl) : Buffer.alloc(0);
    end = start;
  }
  return out.reverse();
}

/**
 * The last `n` lines kept, reading `path` up to `size` and then the rotated files, newest first, until there
 * are `n` (at most `maxRotated` of them).
 */
export function lastLines(path: string, fd: number, size: number, n: number, keep: (line: string) => boolean, maxRotated = 1000): string[] {
  if (n <= 0) return [];
  let lines = tailOf(fd, size, n, keep);
  for (let r = 1; lines.length < n && r <= maxRotated; r++) {
    let rfd: number;
    try { rfd = openSync(rotatedName(path, r), 'r'); } catch { break; }
    try {
      lines = [...tailOf(rfd, fstatSync(rfd).size, n - lines.length, keep), ...lines];
    } finally {
      closeSync(rfd);
    }
  }
  return lines;
}

/** At most this many files are stepped through in one poll. */
const MAX_STEPS = 1000;

/** The inode and size of NAME.log (index 0; undefined between a rename and its re-creation), .1, .2 … up to the first missing. */
function rotationChain(path: string): Array<{ ino: number; size: number } | undefined> {
  const out: Array<{ ino: number; size: number } | undefined> = [];
  for (let n = 0; n <= MAX_STEPS; n++) {
    let st;
    try { st = statSync(n === 0 ? path : rotatedName(path, n)); } catch { if (n === 0) { out.push(undefined); continue; } break; }
    out.push({ ino: st.ino, size: st.size });
  }
  return out;
}

/** Follows `path` from byte `pos` of the file open as `fd`, handing every complete line to `emit`. */
export class Follower {
  private partial = '';
  /** A character cut by a read's end waits for its other bytes. */
  private decoder = new StringDecoder('utf8');

  constructor(private readonly path: string, private fd: number, private pos: number, private readonly emit: (line: string) => void) {}

  /** Reads what is new; call it on a timer. */
  poll(): void {
    this.drain();
    // A few rotations may have happened since the last poll: step from file to file until the newest.
    for (let step = 0; step < MAX_STEPS && this.next(); step++) this.drain();
  }

  /**
   * Moves to the file written after ours, once the master is done with ours; false when it is still ours.
   * Rotation shifts every name by one (NAME.log → .1 → .2, superv's and logrotate's default alike), so the
   * file after ours is the one named one step newer. The master is done with ours once any newer file has
   * bytes: it writes to a newer file only after it stopped writing to the older ones.
   */
  private next(): boolean {
    const ours = fstatSync(this.fd);
    const chain = rotationChain(this.path);
    const at = chain.findIndex((f) => f?.ino === ours.ino);
    if (at === 0) {
      // copytruncate: the file got shorter under us; read it again from its start.
      if (ours.size < this.pos) { this.pos = 0; this.partial = ''; this.decoder = new StringDecoder('utf8'); }
      return false;
    }
    // Not found (deleted, compressed, renamed by date): like tail -F, go on with whatever the path names now.
    const target = at < 0 ? 0 : at - 1;
    const newer = at < 0 ? chain.slice(0, 1) : chain.slice(0, at);
    if (!newer.some((f) => f !== undefined && f.size > 0)) return false;
    const want = chain[target];
    if (want === undefined) return false;
    let fd: number;
    try { fd = openSync(target === 0 ? this.path : rotatedName(this.path, target), 'r'); } catch { return false; }
    if (fstatSync(fd).ino !== want.ino) { closeSync(fd); return false; } // renamed again meanwhile: next poll
    this.drain();
    if (this.partial !== '') { this.emit(this.partial); this.partial = ''; }
    closeSync(this.fd);
    this.fd = fd;
    this.pos = 0;
    this.decoder = new StringDecoder('utf8');
    return true;
  }

  private drain(): void {
    const buf = Buffer.alloc(CHUNK);
    for (;;) {
      const got = readSync(this.fd, buf, 0, CHUNK, this.pos);
      if (got <= 0) return;
      this.pos += got;
      const text = this.partial + this.decoder.write(buf.subarray(0, got));
      const lines = text.split('\n');
      this.partial = lines.pop()!;
      for (const l of lines) if (l !== '') this.emit(l);
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
