// Instruments a driver when its CommonJS files load, whether the app `require`s it or `import`s it.
//
// The hook is Module._extensions['.js']: on Node 20.20 every file the CommonJS loader compiles passes
// through it exactly once, with its resolved filename and, once it returns, its final exports. That is
// true for `require('pg')` and equally for `import pg from 'pg'`: pg's ESM wrapper (esm/index.mjs)
// imports lib/index.js, which Node's ESM loader hands to Module._load, and lib/index.js then requires
// lib/client.js and pg-pool like any CommonJS file (verified: test/db-esm.test.ts). So we patch the
// inner files the drivers always load through `require` (pg/lib/client.js, pg-pool/index.js,
// mysql2/lib/base/connection.js…), never the entry points, and never the ESM namespace.
//
// Why not the alternatives: Module._load sees request strings to resolve and cache hits, and
// Module.prototype.require misses the top file an ESM import loads; module.register() runs its hooks on
// another thread, so it could only rewrite source, and would put a loader thread in every worker.
//
// Limits: a file Node compiles without the CommonJS loader is not seen here: drivers bundled into the
// app, or CommonJS imported from ESM while a module.register() loader (a TypeScript loader, say)
// supplies its source. Those still land in require.cache, so sweep() patches them when superv installs
// and again at every dump, and the dump says from when on they were instrumented.

import { readFileSync } from 'node:fs';
import Module from 'node:module';

export interface ModuleTarget {
  /** The driver the file belongs to, as the dump names it ('pg', 'postgres', 'mysql2', 'mariadb'). */
  driver: string;
  /** The end of the file's path, forward slashes: '/pg/lib/client.js' (also matches pnpm's layout). */
  suffix: string;
  /**
   * Patches the module's exports in place, or returns what replaces them (a wrapped factory function,
   * seen by every file that requires it after). Idempotent; throwing is reported, not fatal. `filename`
   * is the file's resolved path: a patch may find the driver's other files from it.
   */
  patch(exports: unknown, filename: string): unknown;
  /**
   * Rewrites the file's source before it is compiled: for a bundle whose classes are not exported
   * (mariadb's), to hand them to us as they are defined. Only files loaded through the hook get it.
   */
  transform?(source: string): string;
  /**
   * Only while it loads: the patch replaces what the driver's other files take when they load
   * (postgres.js destructures its Query class; mariadb's bundle hides its classes). Found already
   * loaded by a sweep, such a file is reported, not patched.
   */
  loadOnly?: true;
}

/** `late`: found by a sweep at dump time, i.e. loaded in a way the hook did not see. */
type How = 'load' | 'install' | 'late' | 'missed';
interface LoadingModule {
  exports: unknown;
  _compile?(source: string, filename: string): unknown;
}
type Loader = (this: unknown, module: LoadingModule, filename: string) => unknown;
interface ModuleInternals {
  _extensions: Record<string, Loader>;
  _cache: Record<string, { exports?: unknown; loaded?: boolean } | undefined>;
}

const internals = Module as unknown as ModuleInternals;
const targets: ModuleTarget[] = [];
/** Files patched, and how: at load, or late by a sweep. */
const patched = new Map<string, How>();
/** The drivers those files belong to. */
const drivers = new Set<string>();
const failures: string[] = [];
let onPatched: (filename: string) => void = () => undefined;
let installed = false;

function normalise(filename: string): string {
  return filename.includes('\\') ? filename.replace(/\\/g, '/') : filename;
}

function targetOf(filename: string): ModuleTarget | undefined {
  // Every file the app loads passes here once: reject the app's own files with one search.
  if (!filename.includes('node_modules')) return undefined;
  const f = normalise(filename);
  for (const t of targets) if (f.endsWith(t.suffix)) return t;
  return undefined;
}

/** Patches a loaded module; returns the exports that replace its own, if the patch made some. */
function apply(t: ModuleTarget, filename: string, exports: unknown, how: How): unknown {
  if (patched.has(filename)) return undefined;
  try {
    const replaced = t.patch(exports, filename);
    patched.set(filename, how);
    drivers.add(t.driver);
    onPatched(filename);
    return replaced;
  } catch (err) {
    if (failures.length < 20) failures.push(`${filename}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** Compiles a target's rewritten source the way the CommonJS loader would; false to let it load as is. */
function compileTransformed(t: ModuleTarget, module: LoadingModule, filename: string): boolean {
  if (t.transform === undefined || typeof module._compile !== 'function') return false;
  let source: string;
  try {
    source = t.transform(readFileSync(filename, 'utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    if (failures.length < 20) failures.push(`${filename}: ${err instanceof Error ? err.message : String(err)}`);
    return false;
  }
  module._compile(source, filename);
  return true;
}

/** Files already in require.cache (loaded before us, or outside the hook) get patched now. */
export function sweep(how: 'install' | 'late'): void {
  const cache = internals._cache;
  for (const filename of Object.keys(cache)) {
    if (patched.has(filename)) continue;
    const t = targetOf(filename);
    const m = cache[filename];
    if (t === undefined || m?.loaded !== true) continue;
    if (t.loadOnly === true) {
      patched.set(filename, 'missed');
      if (failures.length < 20) failures.push(`${filename}: it was loaded before superv's hook (or outside it), and can only be instrumented while it loads`);
    } else {
      apply(t, filename, m.exports, how);
    }
  }
}

export function watchModules(list: ModuleTarget[], patchedHook: (filename: string) => void): void {
  targets.push(...list);
  onPatched = patchedHook;
  if (!installed) {
    installed = true;
    const original = internals._extensions['.js'];
    if (typeof original === 'function') {
      internals._extensions['.js'] = function supervJsLoader(this: unknown, module: LoadingModule, filename: string): unknown {
        const t = targetOf(filename);
        const r = t !== undefined && compileTransformed(t, module, filename) ? undefined : Reflect.apply(original, this, arguments) as unknown;
        if (t !== undefined) {
          const replaced = apply(t, filename, module.exports, 'load');
          if (replaced !== undefined) module.exports = replaced;
        }
        return r;
      };
    }
  }
  sweep('install');
}

function packageOf(filename: string): string {
  const parts = normalise(filename).split('/node_modules/');
  const tail = parts[parts.length - 1] ?? filename;
  const [a = tail, b = ''] = tail.split('/');
  return a.startsWith('@') ? `${a}/${b}` : a;
}

/** What the dump should say about how the drivers were instrumented. */
export function hookNotes(): string[] {
  const late = new Set<string>();
  for (const [file, how] of patched) if (how === 'late') late.add(packageOf(file));
  const out: string[] = [];
  if (late.size > 0) {
    out.push(`${[...late].join(', ')} loaded without passing through the CommonJS loader (a module.register() loader ` +
      'supplied its source) and was instrumented late, at a dump: statements issued before then are not listed');
  }
  for (const f of failures) out.push(`instrumenting ${f} failed`);
  return out;
}

/** The drivers instrumented so far, in the order they loaded. */
export function patchedDrivers(): string[] {
  return [...drivers];
}
