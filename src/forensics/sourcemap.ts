// Maps a generated position (what V8 reports) back to the app's source through the script's source map, in
// the watchdog thread, after the main thread was resumed: loading and parsing a map never lengthens a pause.
// Node's own map cache (module.findSourceMap) lives in the main thread and only with --enable-source-maps,
// so the watchdog keeps its own. Anything that fails (no map, unreadable, not JSON, position not mapped)
// gives `undefined`: a frame without `original` is still a good frame.

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath } from 'node:url';
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
  map: SourceMap;
  /** What `sources` (with sourceRoot) resolve against: the map file's URL, or the script's for an inline map. */
  base: string;
  sourceRoot: string;
  bytes: number;
}

/** "file:///a/b.ts" → "/a/b.ts"; anything else (webpack://, node:, a bare name) stays as it is. */

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
  const path = fileURLToPath(mapUrl);
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
  return { map: new SourceMap(payload), base, sourceRoot, bytes: text.length };
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

  async lookup(scriptUrl: string, sourceMapURL: string, line0: number, column0: number): Promise<OriginalPosition | undefined> {
    const l = await this.get(scriptUrl, sourceMapURL);
    if (!l) return undefined;
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
    this.maps.set(key, loaded);
    this.bytes += loaded?.bytes ?? 0;
    this.evict();
    return loaded;
  }

  private evict(): void {
    for (const [key, l] of this.maps) {
      if (this.maps.size <= MAX_MAPS && this.bytes <= MAX_CACHED_BYTES) return;
      this.maps.delete(key);
      this.bytes -= l?.bytes ?? 0;
    }
  }
}
