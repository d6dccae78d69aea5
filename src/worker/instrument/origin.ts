// Where a query builder's thenable was made, for the statement it later runs.
//
// V8's async stack traces follow `await` on promises; an ORM whose queries are thenables (drizzle's
// QueryPromise, Prisma's PrismaPromise) is awaited through its then(), which V8 calls from a job of its
// own: by the time the driver's query() runs, neither the synchronous stack nor the await chain leads
// back to the app. The app's frame is on the stack only when the thenable is *made*
// (`db.execute(sql…)`): the layer's module marks it there (a bounded capture, formatted only if a dump
// lists the statement) and runs its then() inside an AsyncLocalStorage scope holding the mark, so the
// statement the driver issues under it takes the mark as its call site (state.ts).
//
// Cost: only for apps that load such a layer (nothing is read before one does): one capture per
// query built, and one AsyncLocalStorage scope per query awaited.

import { AsyncLocalStorage } from 'node:async_hooks';
import { captureSite } from './callsite';
import { settings } from './settings';

/** Frames from the mark to the app: the layer's constructors and its builder method (drizzle: 4). */
const ORIGIN_FRAMES = 12;
/** Where the layers' rewritten sources find markOrigin (they cannot import anything of ours). */
export const MARK_ORIGIN = Symbol.for('superv.markOrigin');
/** Where a marked thenable keeps its mark. */
export const kOrigin = Symbol.for('superv.origin');

const store = new AsyncLocalStorage<object>();
let active = false;

/** A mark of the current stack above the caller's caller, or undefined with call sites off. */
function markOrigin(): object | undefined {
  if (settings.frames === 0) return undefined;
  const holder = {};
  captureSite(holder, markOrigin, ORIGIN_FRAMES);
  return holder;
}

/** Makes markOrigin reachable from rewritten sources; statements start reading marks from now on. */
export function enableOrigins(): void {
  active = true;
  (globalThis as { [MARK_ORIGIN]?: () => object | undefined })[MARK_ORIGIN] = markOrigin;
}

export function runWithOrigin<T>(origin: object, fn: () => T): T {
  return store.run(origin, fn);
}

/** The mark of the thenable whose then() started the current work, if any. */
export function currentOrigin(): object | undefined {
  return active ? store.getStore() : undefined;
}
