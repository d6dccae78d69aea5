// What the workers and the hooks print, recorded as superv's own records that name their source, so that no
// child can produce a line that looks like superv's: a hook printing `{"level":50,"event":"worker-stuck"}`
// used to land in the log indistinguishable from a real kill. Each line becomes one record
// (`{"event":"output","source":"worker 3 stdout","msg":"[worker 3 stdout] …"}`); a child's stdout goes to
// the master's stdout, its stderr to the master's stderr, as before. Lines are bounded: a longer one is cut at
// MAX_LINE_CHARS with a marker saying how much was dropped, so 100 MB without a newline costs 16 KiB of
// memory and one record, and never breaks the next JSON line.

import type { Readable } from 'node:stream';
import type { Logger } from './logger';

export const MAX_LINE_CHARS = 16 * 1024;

/** Splits a stream of text into lines of at most `max` characters, counting what it cuts off. Pure. */
export class LineSplitter {
  private buf = '';
  private dropped = 0;

  constructor(private readonly emit: (line: string, droppedChars: number) => void, private readonly max = MAX_LINE_CHARS) {}

  push(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      const piece = nl < 0 ? chunk.slice(start) : chunk.slice(start, nl);
      const take = piece.slice(0, Math.max(0, this.max - this.buf.length));
      this.buf += take;
      this.dropped += piece.length - take.length;
      if (nl < 0) return;
      this.flushLine();
      start = nl + 1;
    }
  }

  /** The last line, if the stream ended without a newline. */
  end(): void {
    if (this.buf !== '' || this.dropped > 0) this.flushLine();
  }

  private flushLine(): void {
    const line = this.buf.endsWith('\r') ? this.buf.slice(0, -1) : this.buf;
    const dropped = this.dropped;
    this.buf = '';
    this.dropped = 0;
    this.emit(line, dropped);
  }
}

/** Control characters would let a line rewrite a terminal (pretty logs); JSON escapes them anyway. */
function printable(line: string): string {
  return line.replace(/[\u0000-\u0008\u000b-\u001f\u007f\u009b]/g, '\ufffd');
}

export class OutputRecorder {
  private readonly open = new Set<Promise<void>>();

  /** `out` writes the master's stdout, `err` its stderr; both record at info whatever log_level says. */
  constructor(private readonly out: Logger, private readonly err: Logger) {}

  /** Records every line of `stream` as coming from `source` (e.g. `worker 3 stdout`, `hook on_dump stderr`). */
  attach(stream: Readable | null | undefined, source: string, to: 'out' | 'err'): void {
    if (!stream) return;
    const log = to === 'out' ? this.out : this.err;
    const lines = new LineSplitter((line, dropped) => {
      const cut = dropped > 0 ? ` …[superv: line truncated, ${dropped} more characters dropped]` : '';
      log.info({ event: 'output', source, ...(dropped > 0 ? { truncated: dropped } : {}) }, `[${source}] ${printable(line)}${cut}`);
    });
    stream.setEncoding('utf8');
    const ended = new Promise<void>((resolve) => {
      stream.on('data', (d: string) => lines.push(d));
      stream.once('close', () => { lines.end(); resolve(); });
      stream.on('error', () => undefined);
    });
    this.open.add(ended);
    void ended.then(() => this.open.delete(ended));
  }

  /**
   * Waits (at most `ms`) until every attached stream has ended: a worker's last words (the error that made it
   * exit) arrive after its exit event, and the master must not exit before it has recorded them.
   */
  async drained(ms: number): Promise<void> {
    if (this.open.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.open]), new Promise<void>((r) => { timer = setTimeout(r, ms); })]);
    clearTimeout(timer);
  }
}
