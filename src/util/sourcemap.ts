// Maps a generated position (what V8 reports) back to the app's source through the script's source map. Three
// users: the watchdog thread, after the main thread was resumed (loading and parsing a map never lengthens a
// pause); the master, for the stacks of a crash dump (the worker is dead: its error's stack is text with
// generated positions); and the master again for the CPU samples' frames (master/cpu-frame-map.ts), which have
// a line and no column (lookupLine). Node's own map cache (module.findSourceMap) lives in the main thread and
// only with --enable-source-maps, so each keeps its own. Anything that fails (no map, unreadable, not JSON,
// position not mapped) gives `undefined`: a frame without `original` is still a good frame.

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { pathToFileURL } from 'node:url';
import { SourceLines } from './source-lines';
import { urlToPath } from './url-path';

export interface OriginalPosition {
  file: string;
  /** 1-based, like Frame. */
  line: number;
  column: number;
  name?: string;
}

/** A map bigger than this is a bundle's: parsing it would cost the watchdog more time and heap than it has. */
export const MAX_MAP_BYTES = 16 * 1024 * 1024;
const MAX_MAPS = 32;
const MAX_CACHED_BYTES = 64 * 1024 * 1024;

interface Loaded {
  /** The map as read; dropped by a lines-only cache once `lines` is decoded. */
  payload?: SourceMapPayload;
  sources: readonly unknown[];
  /** Parsed on first use (null: it failed): a map read only for line look-ups (CPU frames) never needs Node's parse. */
  map?: SourceMap | null;
  lines?: SourceLines;
  /** What `sources` (with sourceRoot) resolve against: the map file's URL, or the script's for an inline map. */
  base: string;
  sourceRoot: string;
  bytes: number;
}

function decodeDataUrl(url: string): string | undefined {
  const comma = url.indexOf(',');
  if (comma < 0) return undefined;
  const meta = url.slice(5, comma);
  const body = url.slice(comma + 1);
  if (body.length > (MAX_MAP_BYTES / 3) * 4 + 4) return undefined;
  return meta.endsWith(';base64') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body);
}

async function readMapFile(mapUrl: string): Promise<string | undefined> {
  // Only local files: a map URL is app-controlled text, and the watchdog must never make network requests.
  if (!mapUrl.startsWith('file:')) return undefined;
  const path = urlToPath(mapUrl);
  if ((await stat(path)).size > MAX_MAP_BYTES) return undefined;
  return readFile(path, 'utf8');
}

async function load(scriptUrl: string, sourceMapURL: string): Promise<Loaded | undefined> {
  let text: string | undefined;
  let base: string;
  if (sourceMapURL.startsWith('data:')) {
    text = decodeDataUrl(sourceMapURL);
    base = scriptUrl;
  } else {
    base = new URL(sourceMapURL, scriptUrl).href;
    text = await readMapFile(base);
  }
  if (text === undefined) return undefined;
  const payload = JSON.parse(text) as SourceMapPayload;
  const sourceRoot = typeof payload.sourceRoot === 'string' ? payload.sourceRoot : '';
  if (!Array.isArray(payload.sources) || typeof payload.mappings !== 'string') return undefined;
  return { payload, sources: payload.sources, base, sourceRoot, bytes: text.length };
}

async function decodeLines(mappings: string): Promise<SourceLines> {
  try {
    return await SourceLines.decode(mappings, () => new Promise((r) => setImmediate(r)));
  } catch {
    return SourceLines.of(''); // broken mappings: no line answered, and not decoded again
  }
}

function resolveSource(l: Loaded, source: string): string {
  // Node's SourceMap returns `sources` entries raw: sourceRoot and the base are ours to apply.
  const root = l.sourceRoot === '' || l.sourceRoot.endsWith('/') ? l.sourceRoot : `${l.sourceRoot}/`;
  try {
    return urlToPath(new URL(root + source, l.base).href);
  } catch {
    return root + source;
  }
}

/** Parsed maps by script, least recently used first out; failures are remembered too, so they cost once. */
export class SourceMapCache {
  private readonly maps = new Map<string, Loaded | null>();
  private bytes = 0;

  /**
   * `linesOnly`: the cache answers lookupLine only, and keeps of each map its line index (12 bytes a generated
   * line), not its text: the master's CPU frames, where maps are held for the master's life.
   */
  constructor(private readonly opts: { linesOnly?: boolean } = {}) {}

  async lookup(scriptUrl: string, sourceMapURL: string, line0: number, column0: number): Promise<OriginalPosition | undefined> {
    const l = await this.get(scriptUrl, sourceMapURL);
    if (!l) return undefined;
    if (l.payload === undefined) return undefined;
    if (l.map === undefined) {
      try {
        l.map = new SourceMap(l.payload);
      } catch {
        l.map = null; // not parsed again
      }
    }
    if (l.map === null) return undefined;
    const e = l.map.findEntry(line0, column0);
    if (!('originalSource' in e)) return undefined;
    const name = (e as { name?: unknown }).name;
    return {
      file: resolveSource(l, e.originalSource),
      line: e.originalLine + 1,
      column: e.originalColumn + 1,
      ...(typeof name === 'string' && name !== '' ? { name } : {}),
    };
  }

  /**
   * The source file and 1-based line of a generated line (0-based) without a column: source-lines.ts says when
   * a line has one. Undefined when not (no map, no mapping on that line, code from several places).
   */
  async lookupLine(scriptUrl: string, sourceMapURL: string, line0: number): Promise<{ file: string; line: number } | undefined> {
    const l = await this.get(scriptUrl, sourceMapURL);
    if (!l) return undefined;
    l.lines ??= await decodeLines(l.payload?.mappings ?? '');
    const at = l.lines.at(line0);
    const source = at === undefined ? undefined : l.sources[at.source];
    if (at === undefined || typeof source !== 'string') return undefined;
    return { file: resolveSource(l, source), line: at.line + 1 };
  }

  private async get(scriptUrl: string, sourceMapURL: string): Promise<Loaded | null> {
    // An inline map can be megabytes: key it by a digest, not by the text.
    const id = sourceMapURL.startsWith('data:') ? createHash('sha1').update(sourceMapURL).digest('hex') : sourceMapURL;
    const key = `${scriptUrl}\0${id}`;
    const hit = this.maps.get(key);
    if (hit !== undefined) {
      this.maps.delete(key);
      this.maps.set(key, hit);
      return hit;
    }
    let loaded: Loaded | null = null;
    try {
      loaded = (await load(scriptUrl, sourceMapURL)) ?? null;
    } catch {
      loaded = null;
    }
    if (loaded !== null && this.opts.linesOnly === true) {
      loaded.lines = await decodeLines(loaded.payload?.mappings ?? '');
      loaded.payload = undefined;
      loaded.bytes = loaded.lines.bytes + loaded.sources.reduce<number>((a, x) => a + (typeof x === 'string' ? x.length : 0), 0);
    }
    this.maps.set(key, loaded);
    this.bytes += loaded?.bytes ?? 0;
    this.evict();
    return loaded;
  }

  /** Drops what is cached for a script (it changed on disk: a deploy), so its map is read again. */
  forget(scriptUrl: string): void {
    for (const [key, l] of this.maps) {
      if (!key.startsWith(`${scriptUrl}\0`)) continue;
      this.maps.delete(key);
      this.bytes -= l?.bytes ?? 0;
    }
  }

  private evict(): void {
    for (const [key, l] of this.maps) {
      if (this.maps.size <= MAX_MAPS && this.bytes <= MAX_CACHED_BYTES) return;
      this.maps.delete(key);
      this.bytes -= l?.bytes ?? 0;
    }
  }
}

/** Where a script says its map is: the last `//# sourceMappingURL=` in its text, as a URL or a data: URL. */
export async function scriptSourceMapUrl(path: string): Promise<string | undefined> {
  // An inline map makes the script as big as the map; a bigger one is a bundle's, which we skip (see MAX_MAP_BYTES).
  // Only a regular file, opened without blocking: a path from an error's text could name a FIFO or a device.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_MAP_BYTES * 2) return undefined;
    const text = (await fh.readFile('utf8'));
    const at = text.lastIndexOf('sourceMappingURL=');
    if (at < 0 || !/\/\/[#@] $/.test(text.slice(Math.max(0, at - 4), at))) return undefined;
    const url = /^\S+/.exec(text.slice(at + 'sourceMappingURL='.length))?.[0];
    return url;
  } finally {
    await fh.close();
  }
}

/** A stack frame as dumps hold it (dump/types.ts Frame): positions 1-based. */
interface MappableFrame {
  file: string;
  line: number;
  column: number;
  app: boolean;
  original?: OriginalPosition;
}

/**
 * Adds `original` to the app's frames whose script ships a source map, in place, until `deadline` (epoch ms):
 * for stacks read from an error's text, where no inspector told us the map. A frame already mapped (the app
 * runs with --enable-source-maps, so its stack names the source) finds no map and stays as it is.
 */
export async function mapFrames(frames: MappableFrame[], cache: SourceMapCache, deadline: number): Promise<void> {
  // The deadline bounds the whole, not only the loop: a slow disk must not hold a crash dump back.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => { timer = setTimeout(r, Math.max(0, deadline - Date.now())); timer.unref(); });
  try {
    await Promise.race([mapAll(frames, cache, deadline), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function mapAll(frames: MappableFrame[], cache: SourceMapCache, deadline: number): Promise<void> {
  const urls = new Map<string, string | undefined>();
  for (const f of frames) {
    if (Date.now() >= deadline) return;
    if (!f.app || f.original !== undefined || f.line < 1) continue;
    const path = f.file.startsWith('file:') ? urlToPath(f.file) : f.file;
    if (!path.startsWith('/')) continue;
    if (!urls.has(path)) urls.set(path, await scriptSourceMapUrl(path).catch(() => undefined));
    const mapUrl = urls.get(path);
    if (mapUrl === undefined) continue;
    const original = await cache.lookup(pathToFileURL(path).href, mapUrl, f.line - 1, f.column - 1).catch(() => undefined);
    if (original !== undefined) f.original = original;
  }
}
