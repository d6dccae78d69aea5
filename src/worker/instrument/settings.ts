// What installInstrumentation() was asked for, read on the hot path by every wrapper: one plain object,
// so a wrapper pays a property load, not a function call.

export interface InstrumentationOptions {
  /** Record bound parameters (values) next to SQL. Off by default: they are often personal data. */
  recordValues: boolean;
  /**
   * Stack frames captured per statement or outbound call to find the app's call site; 0 turns call
   * sites off. The capture is the instrumentation's main per-query cost when it happens (~0.8 µs + ~0.4 µs
   * per frame on this 2-core box), which the per-SQL cache (callsite.ts) makes once per SQL text. The
   * count includes V8's async frames: behind a query builder or ORM the app's frame is past 8-20 of the
   * library's own (knex over pg: 9 sync frames, then the app's as the second async one), so the
   * default reaches well past that.
   */
  callSiteFrames?: number;
  /**
   * Reuse the call site first seen for the same SQL text instead of capturing it per query (callsite.ts
   * says why and when it is still exact). Default true; false captures every statement's own stack.
   */
  callSiteCache?: boolean;
  /**
   * The app is an ES module: on Node versions without a main-thread resolve hook (20), a loader thread
   * may be started so that its imports of postgres.js and mariadb are instrumented (esm-redirect.ts).
   */
  esmApp?: boolean;
  /** Ask the database who blocks a waiting statement when a dump is taken (lock-lookup.ts). Default true. */
  lockLookup?: boolean;
}

export const DEFAULT_FRAMES = 32;

export const settings = {
  recordValues: false,
  frames: DEFAULT_FRAMES,
  siteCache: true,
};

export function configure(opts: InstrumentationOptions): void {
  settings.recordValues = opts.recordValues === true;
  const f = opts.callSiteFrames;
  settings.siteCache = opts.callSiteCache !== false;
  settings.frames = typeof f === 'number' && Number.isFinite(f) ? Math.max(0, Math.min(50, Math.floor(f))) : DEFAULT_FRAMES;
}
