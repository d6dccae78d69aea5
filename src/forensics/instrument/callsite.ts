// Where the app issued a query or an outbound call: the first stack frame that is the app's own code.
//
// Capture and formatting are split. On the hot path, Error.captureStackTrace(holder, below) only walks
// the frames above our wrapper and keeps them in V8's structured form: V8 formats `holder.stack` lazily,
// on its first read. Nobody reads it unless a dump lists the statement; then resolveSite() reads it with
// a temporary Error.prepareStackTrace that returns V8's CallSite objects, so no string is built or
// parsed. Still, the walk itself is dear (test/db-overhead.test.ts, this 2-core machine under load):
// ~2.5 µs for one frame, ~4 µs for 4, ~5.5 µs for 10, against ~15-40 µs of CPU for a whole local
// one-row SELECT. Hence the per-SQL cache below, which makes the usual statement cost ~0.1 µs.

import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CallSite {
  file: string;
  line: number;
  column: number;
  function: string;
  /** False when no frame was the app's own (only node_modules or node internals were on the stack). */
  app: boolean;
}

// superv's own compiled code (dist/src): its frames are never anyone's call site.
const OWN_DIR = resolve(__dirname, '..', '..') + sep;

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

function isApp(file: string): boolean {
  return !file.includes(`${sep}node_modules${sep}`) && !file.startsWith(OWN_DIR);
}

function toPath(file: string): string {
  if (!file.startsWith('file://')) return file;
  try {
    return fileURLToPath(file);
  } catch {
    return file;
  }
}

function fromCallSites(sites: V8CallSite[]): CallSite | undefined {
  let fallback: CallSite | undefined;
  for (const cs of sites) {
    const raw = cs.getFileName() ?? cs.getScriptNameOrSourceURL();
    if (!raw || raw.startsWith('node:') || cs.isNative()) continue;
    const file = toPath(raw);
    if (file.startsWith(OWN_DIR)) continue;
    const site: CallSite = {
      file,
      line: cs.getLineNumber() ?? 0,
      column: cs.getColumnNumber() ?? 0,
      function: cs.getFunctionName() ?? cs.getMethodName() ?? '<anonymous>',
      app: isApp(file),
    };
    if (site.app) return site;
    fallback ??= site;
  }
  return fallback;
}

const FRAME_LINE = /^\s*at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;

// Someone read `holder.stack` before us (it is already a string): parse it.
function fromText(stack: string): CallSite | undefined {
  let fallback: CallSite | undefined;
  for (const line of stack.split('\n')) {
    const m = FRAME_LINE.exec(line);
    if (m === null) continue;
    const file = toPath(m[2] ?? '');
    if (file === '' || file.startsWith('node:') || file.startsWith(OWN_DIR)) continue;
    const site: CallSite = { file, line: Number(m[3]), column: Number(m[4]), function: m[1] ?? '<anonymous>', app: isApp(file) };
    if (site.app) return site;
    fallback ??= site;
  }
  return fallback;
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
  if (Array.isArray(raw)) return fromCallSites(raw as V8CallSite[]);
  if (typeof raw === 'string') return fromText(raw);
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
const cache = new Map<string, CallSite | null>();

/**
 * The call site for `sql` from the cache, captured and resolved on a miss; undefined when the cache is
 * full (the caller then captures lazily itself).
 */
export function cachedSite(sql: string, below: Function, frames: number): CallSite | null | undefined {
  const hit = cache.get(sql);
  if (hit !== undefined) return hit;
  if (cache.size >= MAX_CACHED) return undefined;
  const holder = {};
  captureSite(holder, below, frames);
  const site = resolveSite(holder) ?? null;
  cache.set(sql, site);
  return site;
}

/** `file:line (function)` for sentences. */
export function siteLabel(site: CallSite | undefined): string | undefined {
  return site === undefined ? undefined : `${site.file}:${site.line} (${site.function})`;
}
