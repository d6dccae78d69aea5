// Newline-delimited JSON over a stream, with a hard cap on line length so a garbage peer cannot make the
// reader buffer without bound. Used on the private master ↔ watchdog pipe.

import type { Duplex } from 'node:stream';

export const MAX_LINE_BYTES = 8 * 1024 * 1024;

export function readLines(stream: Duplex, onMessage: (msg: unknown) => void, onError: (why: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_LINE_BYTES && buf.indexOf('\n') < 0) {
      buf = '';
      onError(`line longer than ${MAX_LINE_BYTES} bytes dropped`);
      return;
    }
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.length === 0) continue;
      try {
        onMessage(JSON.parse(line) as unknown);
      } catch {
        onError('a line that is not JSON was dropped');
      }
    }
  });
}

export function writeLine(stream: Duplex, msg: unknown): boolean {
  return stream.write(JSON.stringify(msg) + '\n');
}
