// The last few KiB a worker wrote to stderr, for its crash dump: Node prints "FATAL ERROR: Reached heap
// limit", a native crash's backtrace or an app's last words there, and nowhere else. The master reads the
// worker's stderr through a pipe and passes every byte on to its own stderr unchanged (so the output goes
// where it went when the worker inherited the fd), keeping a copy of the tail. Back-pressure is kept: when
// our stderr is a slow pipe, the worker's pipe is paused rather than buffered without bound.

import type { Readable } from 'node:stream';

/** Bytes kept per worker: enough for an error with its stack and Node's fatal-error banner. */
export const TAIL_BYTES = 8 * 1024;

export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Resolves when the worker's end of the pipe is closed: everything it wrote has been seen. */
  readonly ended: Promise<void>;
  private end!: () => void;

  constructor(private readonly max = TAIL_BYTES) {
    this.ended = new Promise((r) => { this.end = r; });
  }

  push(data: Buffer | string): void {
    // Strings when the output recorder (output.ts) has set an encoding on the same stream.
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    this.chunks.push(b);
    this.size += b.length;
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.max) this.size -= this.chunks.shift()!.length;
  }

  /** The tail as text, cut to whole lines where it can be. */
  text(): string {
    const all = Buffer.concat(this.chunks);
    const cut = all.length > this.max ? all.subarray(all.length - this.max) : all;
    const s = cut.toString('utf8');
    const nl = all.length > this.max ? s.indexOf('\n') : -1;
    return nl >= 0 ? s.slice(nl + 1) : s;
  }

  /** Copies `from` to `to` and keeps its tail. */
  /** Keeps the tail of `from` without passing it on (the output recorder, output.ts, writes it). */
  static watch(from: Readable): OutputTail {
    const tail = new OutputTail();
    from.on('data', (b: Buffer | string) => tail.push(b));
    from.on('error', () => tail.end());
    from.on('close', () => tail.end());
    return tail;
  }

  static tee(from: Readable, to: NodeJS.WritableStream): OutputTail {
    const tail = new OutputTail();
    from.on('data', (b: Buffer) => {
      tail.push(b);
      if (!to.write(b)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    from.on('error', () => tail.end());
    from.on('close', () => tail.end());
    return tail;
  }
}
