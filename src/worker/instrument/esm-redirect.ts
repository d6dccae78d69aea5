// ESM imports of drivers that ship an ES-module build next to their CommonJS one (postgres.js, mariadb
// 3.5) are resolved to the CommonJS build, which the CommonJS hook (hook.ts) instruments. An ES
// module's exports cannot be patched from outside, and its classes (postgres.js's Query, mariadb's
// Connection) are bound where nothing of ours can reach them; the CommonJS builds are made from the
// same sources by the drivers' own release (postgres.js transpiles src/ to cjs/src/, mariadb bundles
// with esbuild and names its exports for ESM importers), so the app gets the same driver either way,
// and a process that both imports and requires it gets one copy instead of two.
//
// How the resolution is changed depends on Node:
// - module.registerHooks() (Node ≥ 22.15 / 23.5): a synchronous hook on the main thread, nothing to
//   pay but one suffix test per resolved import. Installed always.
// - module.register() (Node 20.6+): the hook runs on a loader thread Node starts for it (a second
//   isolate, a few MB). Installed only when the app is an ES module (the worker bootstrap says so), so
//   CommonJS apps, which `require` the CommonJS builds anyway, do not pay for it.

import module from 'node:module';

export interface EsmRedirect {
  /** The end of the ES-module file's path, forward slashes: '/postgres/src/index.js'. */
  from: string;
  /** What replaces `from` in its URL: '/postgres/cjs/src/index.js'. */
  to: string;
}

interface ResolveResult {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}

type NextResolve = (specifier: string, context: unknown) => ResolveResult;
interface RegisterHooks {
  registerHooks?: (hooks: { resolve(specifier: string, context: unknown, next: NextResolve): ResolveResult }) => unknown;
}

/** The same function runs on the main thread (registerHooks) and, as source, on the loader thread. */
function redirect(list: EsmRedirect[], r: ResolveResult): ResolveResult {
  if (!r.url.startsWith('file:') || !r.url.includes('/node_modules/')) return r;
  for (const x of list) {
    if (r.url.endsWith(x.from)) return { url: r.url.slice(0, -x.from.length) + x.to, format: 'commonjs', shortCircuit: true };
  }
  return r;
}

let how: 'main thread' | 'loader thread' | undefined;

/**
 * Redirects the listed ESM files to their CommonJS builds from now on. `loaderThread`: allowed to start
 * a loader thread where Node has no main-thread hook (the app is an ES module). Returns how, or
 * undefined when it did not (then an ESM import of those drivers is not instrumented).
 */
export function redirectEsm(list: EsmRedirect[], loaderThread: boolean): string | undefined {
  if (how !== undefined || list.length === 0) return how;
  const m = module as unknown as RegisterHooks;
  if (typeof m.registerHooks === 'function') {
    m.registerHooks({ resolve: (specifier, context, next) => redirect(list, next(specifier, context)) });
    how = 'main thread';
  } else if (loaderThread && typeof module.register === 'function') {
    const source = `const list = ${JSON.stringify(list)};\n${redirect.toString()}\n` +
      'export async function resolve(specifier, context, next) { return redirect(list, await next(specifier, context)); }\n';
    module.register(`data:text/javascript,${encodeURIComponent(source)}`);
    how = 'loader thread';
  }
  return how;
}

export function esmRedirectMode(): string | undefined {
  return how;
}
