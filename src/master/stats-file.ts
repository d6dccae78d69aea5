// The one way the master writes a statistics file next to the dumps (route latency, route CPU): only when
// something changed, one write at a time, atomically (temp file + rename, util/files.ts) as 0600 in a private
// dir, and never throwing — statistics must not take the master down. The same failure every flush is one
// problem, reported once, not a log line every few seconds.

import { dirname, join } from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../util/files';

/** `<dump dir>/.superv-<kind>-<name>.json`: hidden, so never taken for a dump; one per supervisor name. */
export function statsFilePath(dumpDir: string, kind: 'routes' | 'cpu', name: string): string {
  return join(dumpDir, `.superv-${kind}-${name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || '_'}.json`);
}

export class StatsFileWriter {
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();
  private lastError = '';

  /**
   * `what` names the file in messages ("route stats"); `render` is called at write time, so a flush writes
   * the latest state; `onError` gets each distinct problem once.
   */
  constructor(readonly file: string, private readonly what: string, private readonly render: () => string,
    private readonly onError: (err: Error) => void) {}

  /** Something changed: the next flush writes. */
  changed(): void {
    this.dirty = true;
  }

  /** Writes the file if anything changed since the last write; serialized, never rejects. */
  flush(): Promise<void> {
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  /** A problem with this file (reading it at start, too): reported unless it is the last one again. */
  report(err: Error): void {
    if (err.message === this.lastError) return;
    this.lastError = err.message;
    this.onError(err);
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      const text = this.render();
      ensurePrivateDir(dirname(this.file));
      await writeFileAtomic(this.file, text, 0o600);
      this.lastError = '';
    } catch (e) {
      // Written next time: the state is still in memory.
      this.dirty = true;
      this.report(new Error(`cannot write ${this.what} ${this.file}: ${(e as Error).message}`));
    }
  }
}
