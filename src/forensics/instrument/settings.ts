// What installInstrumentation() was asked for, read on the hot path by every wrapper: one plain object,
// so a wrapper pays a property load, not a function call.

export interface InstrumentationOptions {
  /** Record bound parameters (values) next to SQL. Off by default: they are often personal data. */
  recordValues: boolean;
  /**
   * Stack frames captured per statement or outbound call to find the app's call site; 0 turns call
   * sites off. The capture is the instrumentation's main per-query cost (measured on this 2-core box:
   * ~0.8 µs + ~0.4 µs per frame, against ~15-20 µs of CPU for a local `SELECT 1`). The wrappers start
   * the capture right above the driver API the app called, so 4 frames reach the app's own frame
   * directly and through a thin helper; an ORM in node_modules needs more (its frame is shown otherwise).
   */
  callSiteFrames?: number;
  /**
   * Reuse the call site first seen for the same SQL text instead of capturing it per query (callsite.ts
   * says why and when it is still exact). Default true; false captures every statement's own stack.
   */
  callSiteCache?: boolean;
}

export const DEFAULT_FRAMES = 4;

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
