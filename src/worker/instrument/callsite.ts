// Where the app issued a query or an outbound call: the nearest stack frame that is the app's own code,
// on the synchronous stack or, past it, on the await chain that leads to it.
//
// Capture and formatting are split. On the hot path, Error.captureStackTrace(holder, below) only walks
// the frames above our wrapper and keeps them in V8's structured form: V8 formats `holder.stack` lazily,
// on its first read. Nobody reads it unless a dump lists the statement; then resolveSite() reads it with
// a temporary Error.prepareStackTrace that returns V8's CallSite objects, so no string is built or
// parsed. Still, the walk itself is dear (test/db-overhead.test.ts, this 2-core machine under load):
// ~2.5 µs for one frame, ~4 µs for 4, ~5.5 µs for 10, against ~15-40 µs of CPU for a whole local
// one-row SELECT. Hence the per-SQL cache below, which makes the usual statement cost ~0.1 µs.
//
// Why the await chain: behind a query builder or ORM (knex, Sequelize, Kysely, TypeORM, Drizzle,
// Prisma) the driver's query() runs from the library's own continuation, and the synchronous stack
// holds only library frames. V8's async stack traces (on by default, nothing to pay until a capture)
// add "at async loadReport (app.js:12)" frames for every `await` the chain went through: the app's
// function that awaited the statement. Measured on knex 3 over pg: 9 synchronous library frames, then
// the app's function as the second async frame. Hence the deeper default capture (settings.ts).

import { findSourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { isAppFile, OWN_DIR } from '../app-frames';

/** One stack frame, as a dump shows it (1-based line and column). */
export interface SiteFrame {
  file: string;
  line: number;
  column: number;
  function: string;
}

export interface CallSite extends SiteFrame {
  /** False when no frame was the app's own (only node_modules or node internals were on the stack). */
  app: boolean;
  /** The app frame came from the await chain (V8's `at async …` frames), not the synchronous stack. */
  async?: true;
  /**
   * The library frame nearest to the driver call (the query builder's or ORM's own line), when the
   * first frame above superv's wrapper is not the app's: secondary detail for whoever debugs the layer.
   */
  via?: SiteFrame;
  /** The generated position, when `file`/`line` come from the app's source map. */
  generated?: SiteFrame;
}

type Holder = { stack?: unknown };
type V8CallSite = NodeJS.CallSite;

/** Records up to `frames` frames above `below` (a function on the current stack) in `holder`. */
export function captureSite(holder: object, below: Function, frames: number): void {
  if (frames <= 0) return;
  const saved = Error.stackTraceLimit;
  Error.stackTraceLimit = frames;
  Error.captureStackTrace(holder, below);
  Error.stackTraceLimit = saved;
}

function toPath(file: string): string {
  if (!file.startsWith('file://')) return file;
  try {
    return fileURLToPath(file);
  } catch {
    return file;
  }
}

/**
 * The original position through Node's own source-map cache: filled only when the app runs with
 * --enable-source-maps (or turned it on in code). Read time only; undefined when there is no map.
 */
function mapped(f: SiteFrame): SiteFrame | undefined {
  if (!(process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled) return undefined;
  try {
    const entry = findSourceMap(f.file)?.findEntry(f.line - 1, f.column - 1) as
      { originalSource?: string; originalLine?: number; originalColumn?: number; name?: string } | undefined;
    if (entry?.originalSource === undefined || entry.originalLine === undefined) return undefined;
    return { file: toPath(entry.originalSource), line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1, function: entry.name ?? f.function };
  } catch {
    return undefined;
  }
}

/** One frame seen at read time, as V8 or a stack line gave it. */
interface RawFrame extends SiteFrame {
  async: boolean;
}

/**
 * The app's nearest frame, else the first library frame (marked app: false); the library frame next to
 * the driver rides along as `via` when it is not the app's own. Frames of superv and node are skipped.
 */
function pick(frames: Iterable<RawFrame>): CallSite | undefined {
  let first: RawFrame | undefined;
  for (const f of frames) {
    if (f.file === '' || f.file.startsWith('node:') || f.file.startsWith(OWN_DIR)) continue;
    first ??= f;
    if (!isAppFile(f.file, OWN_DIR)) continue;
    const site: CallSite = { file: f.file, line: f.line, column: f.column, function: f.function, app: true };
    if (f.async) site.async = true;
    if (first !== f) site.via = frameOf(first);
    const original = mapped(site);
    if (original !== undefined) {
      site.generated = frameOf(site);
      Object.assign(site, original);
    }
    return site;
  }
  return first === undefined ? undefined : { ...frameOf(first), app: false };
}

function frameOf(f: SiteFrame): SiteFrame {
  return { file: f.file, line: f.line, column: f.column, function: f.function };
}

function* fromCallSites(sites: V8CallSite[]): Generator<RawFrame> {
  for (const cs of sites) {
    if (cs.isNative()) continue;
    const raw = cs.getFileName() ?? cs.getScriptNameOrSourceURL();
    if (!raw) continue;
    const async = (cs as { isAsync?: () => boolean }).isAsync?.() === true;
    yield {
      file: toPath(raw),
      line: cs.getLineNumber() ?? 0,
      column: cs.getColumnNumber() ?? 0,
      function: cs.getFunctionName() ?? cs.getMethodName() ?? '<anonymous>',
      async,
    };
  }
}

const FRAME_LINE = /^\s*at (async )?(?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;

// Someone read `holder.stack` before us (it is already a string): parse it.
function* fromText(stack: string): Generator<RawFrame> {
  for (const line of stack.split('\n')) {
    const m = FRAME_LINE.exec(line);
    if (m === null) continue;
    yield { file: toPath(m[3] ?? ''), line: Number(m[4]), column: Number(m[5]), function: m[2] ?? '<anonymous>', async: m[1] !== undefined };
  }
}

/** The app's frame in a holder filled by captureSite(), or undefined. Read time only: it formats. */
export function resolveSite(holder: object): CallSite | undefined {
  const h = holder as Holder;
  const saved = Error.prepareStackTrace;
  let raw: unknown;
  try {
    Error.prepareStackTrace = (_err, sites) => sites;
    raw = h.stack;
  } finally {
    Error.prepareStackTrace = saved;
  }
  if (Array.isArray(raw)) return pick(fromCallSites(raw as V8CallSite[]));
  if (typeof raw === 'string') return pick(fromText(raw));
  return undefined;
}

// ---- per-SQL cache ----
//
// Even one captured frame costs ~2.5 µs on this machine (V8 walks and summarises frames), a third of a
// local `SELECT 1`'s CPU: too much per query. But a given SQL text is, nearly always, issued from one
// place in the code: the first time a text is seen its call site is captured and resolved, and then
// reused for every statement with that text (a Map lookup; literal strings cache their hash). Resolved
// once, the cache holds plain data, not V8 frames that would pin the app's objects.
// Where one text is issued from many places the cache would point at one of them, so texts shorter than
// MIN_CACHED_SQL (`BEGIN`, `COMMIT`, `SELECT 1`) are always captured exactly, as the caller decides for
// transaction control. Past MAX_CACHED texts (SQL built with inlined values) statements get an exact,
// lazily formatted capture each.

export const MIN_CACHED_SQL = 16;
const MAX_CACHED = 2000;
/** Per wrapper the app went through (`below`), then per SQL text: one text sent through two drivers is two sites. */
const cache = new Map<Function, Map<string, CallSite | null>>();
let cached = 0;

/**
 * The call site for `sql` from the cache, captured and resolved on a miss; undefined when the cache is
 * full (the caller then captures lazily itself).
 */
export function cachedSite(sql: string, below: Function, frames: number): CallSite | null | undefined {
  let texts = cache.get(below);
  const hit = texts?.get(sql);
  if (hit !== undefined) return hit;
  if (cached >= MAX_CACHED) return undefined;
  const holder = {};
  captureSite(holder, below, frames);
  const site = resolveSite(holder) ?? null;
  if (texts === undefined) cache.set(below, texts = new Map());
  texts.set(sql, site);
  cached++;
  return site;
}

/**
 * `file:line (function)` for sentences; a site with no app frame says so, then names the library frame.
 * The layer's own frame (`via`) stays in the JSON: in a sentence it would bury the app's.
 */
export function siteLabel(site: CallSite | undefined): string | undefined {
  if (site === undefined) return undefined;
  const at = `${site.file}:${site.line} (${site.function})`;
  return site.app ? at : `library code only, no app frame on the stack: ${at}`;
}
