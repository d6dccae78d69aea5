// Reads the main thread of this process from the watchdog thread, through an inspector session connected with
// connectToMainThread() (no port): a probe evaluated on top of the blocked stack (request, heap and app state),
// then a short pause for the stack and the top frames' locals, then source maps once the main thread runs again.
//
// Inspector messages reach the main thread only at V8 stack checks, never inside native code, so the whole
// capture runs against one deadline, and a silent main thread is itself the finding ("in native code").
//
// The Debugger domain is enabled only for the pause and disabled right after, by default: while it is
// enabled every `await` costs ~6.5x and every throw ~1.9x on the main thread (1M awaits: 44 → 300 ms;
// 300k throws: 450 → 830 ms, measured on Node 20.20), and every eval/new Function pays a scriptParsed
// message. Enabling costs 10–70 ms, paid while the loop is blocked anyway.

import type { Debugger, InspectorNotification, Runtime, Session } from 'node:inspector';
import { resolve, sep } from 'node:path';
import { isAppFile } from '../app-frames';
import { localsOf, MAX_LOCALS, readOptions, scopesToRead, truncate, type ScopeResult } from './preview';
import { readScopes, type ScopeRead } from './scope-reader';
import type { SourceMapCache } from '../../util/sourcemap';
import { urlToPath } from '../../util/url-path';
import type { Frame } from '../../dump/types';

export interface CaptureOptions {
  /** Epoch ms. capture() returns by then (give or take a few ms of bookkeeping), whatever the main thread does. */
  deadline: number;
  /**
   * Pause for the stack and locals. Only for a blocked loop: a pause lands at the next JS to run, which for
   * an idle loop may be never (the capture then waits until the deadline; the request is dropped after).
   */
  pause: boolean;
  /** Evaluated on the main thread without pausing; returns a JSON string (or a JSON-able value), parsed into `probe`. */
  probeExpression?: string;
  /** Frames kept, innermost first. Default 50. */
  maxFrames?: number;
  /** Frames whose locals are read, from the top. Default 5. */
  localsFrames?: number;
}

/** Where the time went, ms. `pausedMs` is what the app paid: the main thread was held that long. */
export interface CaptureTimings {
  answerMs?: number;
  probeMs?: number;
  enableMs?: number;
  pauseMs?: number;
  localsMs?: number;
  pausedMs?: number;
  sourceMapsMs?: number;
}

export interface StackCapture {
  /** True when every step asked for answered within the deadline. */
  complete: boolean;
  /** Why not complete, one sentence per failed step. */
  incomplete?: string;
  stack?: Frame[];
  /** The probe's parsed result. */
  probe?: unknown;
  elapsedMs: number;
  timings: CaptureTimings;
}

export interface CapturerOptions {
  /**
   * 'on-demand' (default): Debugger.enable at each paused capture, disable after — no cost while idle.
   * 'always': enable() turns it on for good: captures are 10–70 ms faster, the app's awaits and throws slower.
   */
  debugger?: 'on-demand' | 'always';
  /** Longest probe result accepted, in characters, checked on the main thread before it is copied. */
  maxProbeChars?: number;
}

/** No reply within this long means the main thread is in native code. Idle or in JS it answers in 1–3 ms. */
export const FIRST_ANSWER_MS = 150;
export const DEFAULT_MAX_FRAMES = 50;
export const DEFAULT_LOCALS_FRAMES = 5;
/** Matches the probe's own bound (worker/probe.ts): a result over it is dropped, not truncated into bad JSON. */
export const DEFAULT_MAX_PROBE_CHARS = 2 * 1024 * 1024;
/** The serialised stack stays under this; the caps in preview.ts alone keep it under ~0.5 MB (5 × 30 locals). */
export const MAX_STACK_CHARS = 1024 * 1024;
/** What the stack needs after the probe: Debugger.enable (10–70 ms) and a pause with locals (2–10 ms). */
const STACK_RESERVE_MS = 300;
const MAX_SCRIPTS = 50_000;
/** scope-reader.ts runs on the main thread as source text, compiled once per call (V8 caches it by source). */
const READ_SCOPES_SOURCE = readScopes.toString();
/**
 * The reader's `this`: node's own util.types, a loaded builtin served from node's module cache. Evaluated
 * WITHOUT throwOnSideEffect on purpose: V8 accepts it as side-effect free, but the first side-effect-checked
 * call into it costs time in proportion to the heap (0.5 s at ~100 MB, 2 s at ~400 MB, measured on Node 20.20;
 * unchecked: 1–19 ms), which is the very cost this capture must not have.
 */
const UTIL_TYPES_EXPRESSION = "process.getBuiltinModule('node:util').types";
const SCOPE_NAMES_SOURCE = 'function () { return Object.getOwnPropertyNames(this); }';
/** The reader stops reading this long before the capture's deadline, so that its reply is back in time. */
const READ_MARGIN_MS = 25;
/** Objects the reads leave behind (exceptions): released before the resume. */
const OBJECT_GROUP = 'superv-capture';
/** How long the main thread may be held at an uncaught throw for its locals (crash_locals). */
const UNCAUGHT_LOCALS_MS = 500;
const NATIVE_HINT = 'it is likely in a synchronous native call (execSync, sync fs/zlib/crypto, a huge JSON.parse)';

class TimedOut extends Error {}

interface ScriptInfo {
  url: string;
  sourceMapURL?: string;
}

/** A frame as V8 gave it, kept until the source map step (after the resume). */
interface RawFrame {
  frame: Frame;
  script?: ScriptInfo;
  line0: number;
  column0: number;
}

/**
 * Runs on the main thread: the size is checked there, so an oversized result is never copied into the
 * watchdog (a large returnByValue result once OOM-killed a whole process). The newline ends a trailing comment.
 */
function wrapProbe(expression: string, maxChars: number): string {
  return `(() => { const r = (${expression}\n); const s = typeof r === 'string' ? r : JSON.stringify(r); ` +
    `return s === undefined ? 'null' : s.length > ${maxChars} ? s.length : s; })()`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One capture's bookkeeping: the deadline, the reasons it is incomplete, the timings. */
class Run {
  readonly started = Date.now();
  readonly reasons: string[] = [];
  readonly timings: CaptureTimings = {};
  constructor(readonly deadline: number) {}
  left(): number {
    return this.deadline - Date.now();
  }
  since(t: number): number {
    return Date.now() - t;
  }
}

export class MainThreadCapturer {
  private readonly scripts = new Map<string, ScriptInfo>();
  /** Made at the first capture: its modules (crypto, source maps) would sit in every idle watchdog's RSS. */
  private sourceMapCache: SourceMapCache | undefined;
  private get sourceMaps(): SourceMapCache {
    this.sourceMapCache ??= new (require('../../util/sourcemap') as typeof import('../../util/sourcemap')).SourceMapCache();
    return this.sourceMapCache;
  }
  private readonly mode: 'on-demand' | 'always';
  private readonly maxProbeChars: number;
  private ownPrefix: string | undefined;
  /** Set while Debugger.enable was sent and no disable after it; resolves false if the enable failed. */
  private enabling: Promise<boolean> | undefined;
  private pausedWaiter: ((p: Debugger.PausedEventDataType | undefined) => void) | undefined;
  private busy = false;
  /** Set by pauseOnUncaught(): gets the throwing frames, with locals, while the main thread is held. */
  private onUncaught: ((stack: Frame[]) => void) | undefined;

  constructor(private readonly session: Session, options: CapturerOptions = {}) {
    this.mode = options.debugger ?? 'on-demand';
    this.maxProbeChars = options.maxProbeChars ?? DEFAULT_MAX_PROBE_CHARS;
    session.on('Debugger.scriptParsed', (m: InspectorNotification<Debugger.ScriptParsedEventDataType>) => this.onScript(m.params));
    session.on('Debugger.paused', (m: InspectorNotification<Debugger.PausedEventDataType>) => this.onPaused(m.params));
  }

  /**
   * Pauses the main thread at every exception V8 predicts uncaught, reads the top frames and their locals,
   * hands them to `handler` (which must store them synchronously: the process may end right after) and
   * resumes. Needs the Debugger on for good (`debugger: 'always'`): throws and awaits get slower everywhere,
   * caught ones included (2–6× on a throw-heavy loop, measured), which is why crash_locals is off by default.
   */
  async pauseOnUncaught(handler: (stack: Frame[]) => void): Promise<void> {
    if (!(await this.ensureDebugger())) throw new Error('Debugger.enable failed');
    this.onUncaught = handler;
    await this.send('Debugger.setPauseOnExceptions', { state: 'uncaught' });
  }

  private async readThrow(p: Debugger.PausedEventDataType, handler: (stack: Frame[]) => void): Promise<void> {
    try {
      const run = new Run(Date.now() + UNCAUGHT_LOCALS_MS);
      const raw = p.callFrames.slice(0, DEFAULT_MAX_FRAMES).map((cf) => this.toFrame(cf));
      await this.readLocals(run, p.callFrames.slice(0, Math.min(raw.length, DEFAULT_LOCALS_FRAMES)), raw);
      handler(bound(run, raw.map((r) => r.frame)));
    } catch {
      // The crash dump goes without locals.
    } finally {
      this.fire('Debugger.resume');
    }
  }

  /** Files under this directory are superv's own (`app: false`). */
  setOwnPrefix(dir: string): void {
    const abs = resolve(dir);
    this.ownPrefix = abs.endsWith(sep) ? abs : abs + sep;
  }

  /** With `debugger: 'always'`, enables the Debugger now; otherwise nothing to do (each capture enables it). */
  async enable(): Promise<void> {
    if (this.mode === 'always' && !(await this.ensureDebugger())) throw new Error('Debugger.enable failed');
  }

  /** Never throws; returns by the deadline with what it has, and why it is not more. */
  async capture(opts: CaptureOptions): Promise<StackCapture> {
    const run = new Run(opts.deadline);
    if (this.busy) return { complete: false, incomplete: 'another capture is in progress', elapsedMs: 0, timings: {} };
    this.busy = true;
    let stack: Frame[] | undefined;
    let probe: unknown;
    try {
      if (await this.answers(run)) {
        if (opts.probeExpression !== undefined) probe = await this.probe(run, opts.probeExpression, opts.pause);
        if (opts.pause) stack = await this.stack(run, opts);
      }
    } catch (err) {
      run.reasons.push(`capture failed: ${message(err)}`);
    } finally {
      this.busy = false;
    }
    const out: StackCapture = { complete: run.reasons.length === 0, elapsedMs: run.since(run.started), timings: run.timings };
    if (run.reasons.length > 0) out.incomplete = run.reasons.join('; ');
    if (stack) out.stack = stack;
    if (probe !== undefined) out.probe = probe;
    return out;
  }

  // --- steps -------------------------------------------------------------------------------------------

  /** A cheap call first: its silence tells "in native code" apart from a slow probe or a slow Debugger.enable. */
  private async answers(run: Run): Promise<boolean> {
    const ms = Math.min(FIRST_ANSWER_MS, run.left());
    if (!(ms > 0)) {
      run.reasons.push('no time left for the capture');
      return false;
    }
    const t = Date.now();
    try {
      await this.post('Runtime.getHeapUsage', {}, ms);
    } catch (err) {
      if (!(err instanceof TimedOut)) throw err;
      // Under FIRST_ANSWER_MS the silence may just be a short budget: no diagnosis then.
      run.reasons.push(ms < FIRST_ANSWER_MS
        ? `main thread did not answer within the ${Math.round(ms)} ms left`
        : `main thread did not answer within ${ms} ms: ${NATIVE_HINT}`);
      return false;
    }
    run.timings.answerMs = run.since(t);
    return true;
  }

  private async probe(run: Run, expression: string, pauseNext: boolean): Promise<unknown> {
    const t = Date.now();
    // A stuck probe must not eat the stack's time too: leave it up to STACK_RESERVE_MS (or half the budget).
    const ms = pauseNext ? run.left() - Math.min(run.left() / 2, STACK_RESERVE_MS) : run.left();
    let r: Runtime.EvaluateReturnType;
    try {
      // `timeout` makes V8 terminate the probe itself (the blocked code under it carries on), so a stuck
      // state provider cannot hold the main thread past the deadline.
      const params = { expression: wrapProbe(expression, this.maxProbeChars), returnByValue: true, silent: true, timeout: Math.max(1, Math.floor(ms)) };
      r = await this.post<Runtime.EvaluateReturnType>('Runtime.evaluate', params, ms);
    } catch (err) {
      if (!(err instanceof TimedOut) && !/terminated/i.test(message(err))) throw err;
      run.reasons.push(`the probe did not finish within ${Math.round(ms)} ms`);
      return undefined;
    } finally {
      run.timings.probeMs = run.since(t);
    }
    if (r.exceptionDetails) {
      const why = r.exceptionDetails.exception?.description ?? r.exceptionDetails.text;
      run.reasons.push(`the probe threw: ${truncate(why.split('\n')[0] ?? '', 300)}`);
      return undefined;
    }
    const v: unknown = r.result.value;
    if (typeof v === 'number') {
      run.reasons.push(`the probe's result (${v} chars) is over the ${this.maxProbeChars} limit: dropped`);
      return undefined;
    }
    try {
      return JSON.parse(String(v)) as unknown;
    } catch {
      run.reasons.push('the probe did not return JSON');
      return undefined;
    }
  }

  /** Pause, read frames and locals, resume (always), then source maps with the main thread running. */
  private async stack(run: Run, opts: CaptureOptions): Promise<Frame[] | undefined> {
    if (run.left() <= 0) {
      run.reasons.push('no time left to pause for the stack');
      return undefined;
    }
    let t = Date.now();
    let enabled: boolean;
    try {
      enabled = await within(this.ensureDebugger(), run.left());
    } catch (err) {
      if (!(err instanceof TimedOut)) throw err;
      run.reasons.push(`Debugger.enable did not finish within ${Math.round(run.deadline - t)} ms`);
      this.dropDebugger();
      return undefined;
    }
    run.timings.enableMs = run.since(t);
    if (!enabled) {
      run.reasons.push('Debugger.enable failed');
      return undefined;
    }
    let raw: RawFrame[] | undefined;
    let pausedAt: number | undefined;
    t = Date.now();
    try {
      const paused = await this.pauseMainThread(run);
      run.timings.pauseMs = run.since(t);
      if (!paused) return undefined;
      pausedAt = Date.now();
      raw = paused.callFrames.slice(0, opts.maxFrames ?? DEFAULT_MAX_FRAMES).map((cf) => this.toFrame(cf));
      await this.readLocals(run, paused.callFrames.slice(0, Math.min(raw.length, opts.localsFrames ?? DEFAULT_LOCALS_FRAMES)), raw);
      run.timings.localsMs = run.since(pausedAt);
    } finally {
      // Also when the pause has not landed (yet): on demand, the disable queued after this resume cancels the
      // pending pause; with the Debugger kept on, a late pause lands at the next JS and onPaused() resumes it.
      this.fire('Debugger.resume');
      if (pausedAt !== undefined) run.timings.pausedMs = run.since(pausedAt);
      this.dropDebugger();
    }
    if (!raw) return undefined;
    t = Date.now();
    await this.mapSources(run, raw);
    run.timings.sourceMapsMs = run.since(t);
    return bound(run, raw.map((r) => r.frame));
  }

  private async pauseMainThread(run: Run): Promise<Debugger.PausedEventDataType | undefined> {
    const ms = run.left();
    const landed = new Promise<Debugger.PausedEventDataType | undefined>((res) => {
      const timer = setTimeout(() => done(undefined), Math.max(0, ms));
      const done = (p: Debugger.PausedEventDataType | undefined): void => {
        clearTimeout(timer);
        if (this.pausedWaiter === done) this.pausedWaiter = undefined;
        res(p);
      };
      this.pausedWaiter = done;
    });
    let failure: string | undefined;
    this.post('Debugger.pause', {}, ms).catch((err: unknown) => {
      if (err instanceof TimedOut) return;
      failure = message(err);
      this.pausedWaiter?.(undefined);
    });
    const paused = await landed;
    if (!paused) run.reasons.push(failure !== undefined ? `Debugger.pause failed: ${failure}` : `the main thread did not pause within ${Math.round(ms)} ms`);
    return paused;
  }

  /**
   * Two calls, sent together: the top frame's scopes, then the scopes of the frames below it. The paused main
   * thread answers them in that order, so the likeliest clue comes back first; the frames below share one call
   * so that a value they all hold (the same Map down a recursion) is read once. Each call stops reading at the
   * deadline and returns what it read, naming the rest: a late scope is not lost whole.
   */
  private async readLocals(run: Run, frames: readonly Debugger.CallFrame[], raw: RawFrame[]): Promise<void> {
    // Frames of one module share its closure scope: show it once, in the topmost frame that has it.
    const seenClosures = new Set<string>();
    const firstSight = (s: Debugger.Scope): boolean => {
      if (s.type !== 'closure' || !s.startLocation) return true;
      const key = `${s.startLocation.scriptId}:${s.startLocation.lineNumber}:${s.startLocation.columnNumber ?? 0}`;
      if (seenClosures.has(key)) return false;
      seenClosures.add(key);
      return true;
    };
    const perFrame = frames.map((cf) => scopesToRead(cf.scopeChain).filter(firstSight));
    let results: ScopeResult[][];
    const types = await this.utilTypes(run);
    if (types.objectId !== undefined) {
      const typesId = types.objectId;
      const [top, below] = await Promise.all([perFrame.slice(0, 1), perFrame.slice(1)].map((g) => this.readFrames(run, typesId, g)));
      results = [...top!, ...below!];
    } else {
      results = perFrame.map((scopes) => scopes.map((s) => ({ type: s.type, missing: `not read: ${types.error}` })));
    }
    this.fire('Runtime.releaseObjectGroup', { objectGroup: OBJECT_GROUP });
    let short = 0;
    results.forEach((scopes, i) => {
      const { locals, missing } = localsOf(scopes, frames[i]!.this);
      if (Object.keys(locals).length > 0) raw[i]!.frame.locals = locals;
      if (missing.length > 0) raw[i]!.frame.localsMissing = missing;
      short += missing.length;
    });
    if (short > 0) run.reasons.push(`${short} scope(s) of the top frames were not read in full within the deadline (each frame's localsMissing says what)`);
  }

  /** node:util's `types` on the main thread, by object id: the reader's brand checks. */
  private async utilTypes(run: Run): Promise<{ objectId?: string; error?: string }> {
    try {
      const params = { expression: UTIL_TYPES_EXPRESSION, silent: true, objectGroup: OBJECT_GROUP };
      const r = await this.post<Runtime.EvaluateReturnType>('Runtime.evaluate', params, run.left());
      if (r.result.objectId !== undefined && !r.exceptionDetails) return { objectId: r.result.objectId };
      // process.getBuiltinModule came with Node 20.16.
      return { error: `node:util types unavailable (${truncate((r.exceptionDetails?.exception?.description ?? r.result.type).split('\n')[0] ?? '', 120)})` };
    } catch (err) {
      return { error: err instanceof TimedOut ? 'not read by the deadline' : truncate(message(err), 200) };
    }
  }

  /** The scopes of some frames, in one call; the result has the frames' shape. */
  private async readFrames(run: Run, typesId: string, frames: Debugger.Scope[][]): Promise<ScopeResult[][]> {
    const flat = await this.readSafely(run, typesId, frames.flat());
    let at = 0;
    return frames.map((scopes) => flat.slice(at, (at += scopes.length)));
  }

  /**
   * Scopes in one call. When V8 refuses a side effect (one value touched something it would not allow, and
   * the refusal fails the whole call), each scope alone, then each variable alone: only the offender is lost.
   */
  private async readSafely(run: Run, typesId: string, scopes: readonly Debugger.Scope[]): Promise<ScopeResult[]> {
    const readable = scopes.filter((s) => s.object.objectId !== undefined);
    if (readable.length < scopes.length) {
      const empty: ScopeRead = { vars: [], more: false, unread: [] };
      const read = await this.readSafely(run, typesId, readable);
      return scopes.map((s) => (s.object.objectId === undefined ? { type: s.type, read: empty } : read.shift()!));
    }
    if (scopes.length === 0) return [];
    try {
      const r = await this.callReader(run, typesId, scopes);
      if (r.read) return scopes.map((s, i) => ({ type: s.type, read: r.read![i] ?? { vars: [], more: false, unread: [] } }));
      if (!r.sideEffect) return scopes.map((s) => ({ type: s.type, missing: `not read: ${r.error ?? '?'}` }));
      if (scopes.length > 1) return (await Promise.all(scopes.map((s) => this.readSafely(run, typesId, [s])))).flat();
      return [await this.readByVariable(run, typesId, scopes[0]!)];
    } catch (err) {
      const why = err instanceof TimedOut ? 'not read by the deadline' : `not read: ${truncate(message(err), 200)}`;
      return scopes.map((s) => ({ type: s.type, missing: why }));
    }
  }

  /** The reader's result; or V8 refused a side effect (`sideEffect`); or the reader failed (`error`). */
  private async callReader(run: Run, typesId: string, scopes: readonly Debugger.Scope[], only?: string): Promise<{ read?: ScopeRead[]; sideEffect?: boolean; error?: string }> {
    const opts = readOptions(scopes.map((s) => s.type), run.deadline - READ_MARGIN_MS);
    if (only !== undefined) opts.only = [only];
    const params = {
      objectId: typesId, functionDeclaration: READ_SCOPES_SOURCE,
      arguments: [{ value: opts }, ...scopes.map((s) => ({ objectId: s.object.objectId }))],
      returnByValue: true, throwOnSideEffect: true, silent: true, objectGroup: OBJECT_GROUP,
    };
    const r = await this.post<Runtime.CallFunctionOnReturnType>('Runtime.callFunctionOn', params, run.left());
    if (!r.exceptionDetails) return { read: r.result.value as ScopeRead[] };
    const e = r.exceptionDetails.exception;
    if (e?.className === 'EvalError') return { sideEffect: true };
    return { error: truncate((e?.description ?? r.exceptionDetails.text).split('\n')[0] ?? '', 200) };
  }

  /** One scope, one variable per call (after a refused side effect). Rare, so the extra calls are fine. */
  private async readByVariable(run: Run, typesId: string, scope: Debugger.Scope): Promise<ScopeResult> {
    const params = { objectId: scope.object.objectId, functionDeclaration: SCOPE_NAMES_SOURCE, returnByValue: true, throwOnSideEffect: true, silent: true, objectGroup: OBJECT_GROUP };
    const names = await this.post<Runtime.CallFunctionOnReturnType>('Runtime.callFunctionOn', params, run.left());
    if (names.exceptionDetails || !Array.isArray(names.result.value)) return { type: scope.type, missing: 'not readable without side effects' };
    const list = (names.result.value as unknown[]).filter((n): n is string => typeof n === 'string');
    const wanted = list.slice(0, MAX_LOCALS + 1);
    const reads = await Promise.all(wanted.map((name) => this.callReader(run, typesId, [scope], name).catch((err: unknown) => {
      if (err instanceof TimedOut) return { late: true as const };
      throw err;
    })));
    const out: ScopeRead = { vars: [], more: list.length > wanted.length, unread: [] };
    reads.forEach((r, i) => {
      const name = wanted[i]!;
      if ('late' in r) out.unread.push(name);
      else if (r.read?.[0]) { out.vars.push(...r.read[0].vars); out.unread.push(...r.read[0].unread); }
      else if (!r.read) out.vars.push([name, { t: 'unknown', d: r.sideEffect ? 'not readable without side effects' : `not read: ${r.error ?? '?'}` }]);
    });
    return { type: scope.type, read: out };
  }

  private async mapSources(run: Run, raw: readonly RawFrame[]): Promise<void> {
    for (const r of raw) {
      if (!r.script?.sourceMapURL) continue;
      if (run.left() <= 0) {
        run.reasons.push('no time left for the source maps');
        return;
      }
      const original = await this.sourceMaps.lookup(r.script.url, r.script.sourceMapURL, r.line0, r.column0).catch(() => undefined);
      if (original) r.frame.original = original;
    }
  }

  // --- inspector plumbing --------------------------------------------------------------------------------

  private toFrame(cf: Debugger.CallFrame): RawFrame {
    // callFrame.url is always "" on this V8: the script's URL comes from Debugger.scriptParsed.
    const script = this.scripts.get(cf.location.scriptId);
    const file = urlToPath(script?.url || cf.url || '');
    const line0 = cf.location.lineNumber;
    const column0 = cf.location.columnNumber ?? 0;
    const frame: Frame = {
      function: cf.functionName || '(anonymous)',
      file,
      line: line0 + 1,
      column: column0 + 1,
      app: isAppFile(file, this.ownPrefix),
    };
    return { frame, script, line0, column0 };
  }

  private onScript(p: Debugger.ScriptParsedEventDataType): void {
    // Scripts without a URL (eval, new Function) can be countless and never name a file: not kept. Nor are
    // the scripts of an enable that was answered after its capture gave up (dropDebugger() ran already).
    if (!p.url || !this.enabling) return;
    if (this.scripts.size >= MAX_SCRIPTS) this.scripts.delete(this.scripts.keys().next().value as string);
    this.scripts.set(p.scriptId, p.sourceMapURL ? { url: p.url, sourceMapURL: p.sourceMapURL } : { url: p.url });
  }

  private onPaused(p: Debugger.PausedEventDataType): void {
    const waiter = this.pausedWaiter;
    if (waiter) {
      waiter(p);
      return;
    }
    const onUncaught = this.onUncaught;
    if (onUncaught && (p.reason === 'exception' || p.reason === 'promiseRejection')) {
      void this.readThrow(p, onUncaught);
      return;
    }
    // Not ours (a `debugger;` statement), or ours after the capture gave up: never leave the app paused.
    this.fire('Debugger.resume');
  }

  /** Enables the Debugger once; Debugger.enable replays scriptParsed for every live script, which fills `scripts`. */
  private ensureDebugger(): Promise<boolean> {
    if (!this.enabling) {
      this.scripts.clear();
      // maxScriptsCacheSize 0: V8 need not keep the source of collected scripts for us; by default it keeps all.
      const enabling: Promise<boolean> = this.send('Debugger.enable', { maxScriptsCacheSize: 0 }).then(
        () => true,
        () => {
          if (this.enabling === enabling) this.enabling = undefined;
          return false;
        },
      );
      this.enabling = enabling;
    }
    return this.enabling;
  }

  private dropDebugger(): void {
    if (this.mode === 'always' || !this.enabling) return;
    this.enabling = undefined;
    this.fire('Debugger.disable');
    this.scripts.clear();
  }

  private send<T>(method: string, params: object): Promise<T> {
    return new Promise<T>((res, rej) => {
      // post() throws synchronously when the session is not connected: the executor turns that into a rejection.
      this.session.post(method, params, (err, result) => (err ? rej(err) : res(result as T)));
    });
  }

  private post<T>(method: string, params: object, ms: number): Promise<T> {
    return within(this.send<T>(method, params), ms);
  }

  /** Fire and forget: for resume/disable, whose replies nobody waits for. */
  private fire(method: string, params: object = {}): void {
    try {
      this.session.post(method, params, () => undefined);
    } catch {
      // Disconnected: the main thread resumes by itself when the session goes.
    }
  }
}

/** `p`, or a TimedOut rejection after `ms`. The timer is ref'd on purpose: a capture keeps the thread alive. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((res, rej) => {
    const timer = setTimeout(() => rej(new TimedOut(`no reply within ${Math.round(ms)} ms`)), Math.max(0, ms));
    p.then(
      (v) => { clearTimeout(timer); res(v); },
      (e: unknown) => { clearTimeout(timer); rej(e); },
    );
  });
}

/** Keeps the serialised stack under MAX_STACK_CHARS: drops object previews first, then locals below the top frame. */
function bound(run: Run, stack: Frame[]): Frame[] {
  const size = (): number => JSON.stringify(stack).length;
  if (size() <= MAX_STACK_CHARS) return stack;
  for (const f of stack) for (const v of Object.values(f.locals ?? {})) delete v.props;
  for (let i = stack.length - 1; i >= 1 && size() > MAX_STACK_CHARS; i--) delete stack[i]!.locals;
  if (size() > MAX_STACK_CHARS) delete stack[0]!.locals;
  run.reasons.push(`locals trimmed: the stack was over ${MAX_STACK_CHARS} characters`);
  return stack;
}
