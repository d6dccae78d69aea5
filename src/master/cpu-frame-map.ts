// The CPU samples' frames, source-mapped in the master: an app compiled from TypeScript is sampled at its
// dist/*.js lines (the probe reads V8's call sites, which are generated positions even under
// --enable-source-maps: Node maps only the formatted `error.stack`), and its hottest functions should name the
// .ts file and line, as dumps do. Done here and not in the worker: the app's process keeps only the probe.
//
// A frame key (`function \t file \t line`, dump/cpu.ts) maps to `function \t source file \t source line`,
// keeping V8's function name. `translate` is synchronous and a Map look-up (the heartbeat path calls it per
// distinct frame of each window); the reading happens off it, in `pump`, one key at a time, for the keys `note`
// queued: only app frames (absolute paths or file: URLs, not node:, not node_modules), at most MAX_KEYS of them.
// A key whose map is not read yet, or has no answer for its line (util/source-lines.ts), translates to itself:
// the generated frame is still a good frame. `generation` counts the keys that became mapped, so the stats store
// knows when to re-key what it stored before.
//
// A deploy rewrites a script in place: `revalidate` (the stats flush, every 10 s) stats the scripts read, and
// maps the keys of one that changed again, through its new map. Samples taken before the deploy that were
// stored already mapped keep their mapping; those stored generated (their first second) take the new one.

import { stat } from 'node:fs/promises';
import { setImmediate as yieldLoop } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseFrame, type FrameKey } from '../dump/cpu';
import { scriptSourceMapUrl, SourceMapCache } from '../util/sourcemap';
import { urlToPath } from '../util/url-path';

/** App frames remembered (mapped or not); past it a new one stays generated. */
export const MAX_KEYS = 20_000;
/** Keys waiting to be read; past it a key is left for a later window to queue again. */
const MAX_QUEUE = 5_000;
/** Scripts whose map URL (or its absence) is remembered. */
const MAX_SCRIPTS = 2_000;
/** Keys mapped between two turns of the master's event loop. */
const KEYS_PER_TURN = 200;

/** The path of the script a frame key names, when it is the app's own and mappable; else undefined. Pure. */
export function appScriptOf(file: string): string | undefined {
  const path = file.startsWith('file:') ? urlToPath(file) : file;
  if (!path.startsWith('/') || path.includes('/node_modules/')) return undefined;
  return path;
}

interface Script {
  /** The script's `sourceMappingURL`, or null when it has none (or could not be read). */
  mapUrl: string | null;
  /** What the script was when read: a change means a deploy. */
  sig: string;
}

export class CpuFrameMap {
  /** Key → its mapped key (itself when it has none). */
  private readonly known = new Map<FrameKey, FrameKey>();
  private readonly queue = new Set<FrameKey>();
  /** Keys that are not app frames (node:, node_modules): not mapped, and not counted against MAX_KEYS. */
  private readonly skip = new Set<FrameKey>();
  private readonly scripts = new Map<string, Script>();
  private pumping: Promise<void> | undefined;
  private revalidating = false;
  /** Incremented each time a key becomes mapped to something else than itself. */
  generation = 0;

  // Lines only: a map is read once per script and then held for the master's life; its text is not.
  constructor(private readonly cache: SourceMapCache = new SourceMapCache({ linesOnly: true })) {}

  /** The key's mapped key when known, else the key itself. A Map look-up. */
  translate(key: FrameKey): FrameKey {
    return this.known.get(key) ?? key;
  }

  /** Keys the store just received: the unknown app frames among them are queued. A Map look-up per key. */
  note(keys: readonly unknown[]): void {
    for (const key of keys) {
      if (typeof key !== 'string' || this.known.has(key) || this.queue.has(key) || this.skip.has(key)) continue;
      // Full: nothing new is mapped, and nothing is parsed either (the look-ups above are all a window pays).
      if (this.known.size + this.queue.size >= MAX_KEYS || this.queue.size >= MAX_QUEUE) continue;
      const f = parseFrame(key);
      if (f.line < 1 || appScriptOf(f.file) === undefined) {
        // Only a cache of a cheap decision: emptied rather than grown without bound.
        if (this.skip.size >= MAX_KEYS) this.skip.clear();
        this.skip.add(key);
        continue;
      }
      this.queue.add(key);
    }
    if (this.queue.size > 0) this.pumping ??= this.pump().finally(() => { this.pumping = undefined; });
  }

  /** Resolves when every queued key was read, or after `ms`: a report asked right after a window can wait a little. */
  async settled(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => { timer = setTimeout(r, ms); timer.unref(); });
    try {
      while (this.pumping !== undefined) if (await Promise.race([this.pumping.then(() => false), late.then(() => true)])) return;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Maps again the keys of scripts changed on disk since they were read (a deploy); never rejects. */
  async revalidate(): Promise<void> {
    if (this.revalidating) return;
    this.revalidating = true;
    try {
      for (const [path, s] of [...this.scripts]) {
        if ((await signature(path)) === s.sig) continue;
        this.scripts.delete(path);
        this.cache.forget(pathToFileURL(path).href);
        const again = [...this.known.keys()].filter((key) => appScriptOf(parseFrame(key).file) === path);
        for (const key of again) this.known.delete(key);
        this.note(again);
      }
    } finally {
      this.revalidating = false;
    }
  }

  private async pump(): Promise<void> {
    let n = 0;
    for (const key of this.queue) {
      this.queue.delete(key);
      const mapped = await this.map(key).catch(() => key);
      this.known.set(key, mapped);
      if (mapped !== key) this.generation++;
      if (++n % KEYS_PER_TURN === 0) await yieldLoop();
    }
  }

  private async map(key: FrameKey): Promise<FrameKey> {
    const f = parseFrame(key);
    const path = appScriptOf(f.file);
    if (path === undefined) return key;
    const script = await this.script(path);
    if (script.mapUrl === null) return key;
    const at = await this.cache.lookupLine(pathToFileURL(path).href, script.mapUrl, f.line - 1);
    return at === undefined ? key : `${f.name}\t${at.file}\t${at.line}`;
  }

  private async script(path: string): Promise<Script> {
    const hit = this.scripts.get(path);
    if (hit !== undefined) return hit;
    // The signature first: a script rewritten while it is read is seen as changed at the next revalidation.
    const sig = await signature(path);
    const mapUrl = sig === '' ? undefined : await scriptSourceMapUrl(path).catch(() => undefined);
    const s: Script = { mapUrl: mapUrl ?? null, sig };
    if (this.scripts.size >= MAX_SCRIPTS) this.scripts.clear();
    this.scripts.set(path, s);
    return s;
  }
}

/** What identifies a script's content cheaply: inode, size, mtime; '' when it cannot be stat'ed. */
async function signature(path: string): Promise<string> {
  try {
    const st = await stat(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '';
  }
}
