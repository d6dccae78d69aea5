// Newline-delimited JSON over a stream, with a hard cap on line length so a garbage peer cannot make the
// reader buffer without bound. Used on the private master ↔ watchdog pipe and the control socket.

import type { Duplex } from 'node:stream';

export const MAX_LINE_BYTES = 8 * 1024 * 1024;

/**
 * Calls `onMessage` per line: the parsed JSON, or with `raw` the line itself (for callers that validate
 * and answer bad input themselves). An oversized line is dropped and reported through `onError`.
 */
export function readLines(stream: Duplex, onMessage: (msg: unknown) => void, onError: (why: string) => void,
  maxLineBytes = MAX_LINE_BYTES, raw = false): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim().length === 0) continue;
      if (line.length > maxLineBytes) { onError(`a line longer than ${maxLineBytes} bytes was dropped`); continue; }
      if (raw) { onMessage(line); continue; }
      try {
        onMessage(JSON.parse(line) as unknown);
      } catch {
        onError('a line that is not JSON was dropped');
      }
    }
    if (buf.length > maxLineBytes) {
      buf = '';
      onError(`a line longer than ${maxLineBytes} bytes was dropped`);
    }
  });
}

export function writeLine(stream: Duplex, msg: unknown): boolean {
  if (stream.destroyed || !stream.writable) return false;
  return stream.write(JSON.stringify(msg) + '\n');
}
