// Every unplanned worker exit explained: on reap of a worker superv did not end, the master reads what the
// worker recorded as it died (src/worker/crash.ts), Node's fatal-error report (out of memory), the tail of
// the worker's stderr and its last heartbeat, tells which kind of death it was, and writes a crash dump through
// the one dump path (dumpDeadWorker in dump.ts) — unless the limiter says this exact crash is already on disk
// often enough. The arbiter calls watch() at spawn and reaped() on exit; crash backoff stays the arbiter's.

import { mkdirSync, promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crashDirOf, crashLocalsPath, crashRecordPath, crashSignature, nodeReportName, type CrashRecord } from '../dump/crash';
import type { Capture, CrashInfo, CrashKind, Frame, RequestInfo } from '../dump/types';
import { CrashLimiter } from './crash-limit';
import { dumpDeadWorker, dumpWorker, type DumpContext } from './dump';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { OutputTail } from './output-tail';
import { mapFrames, SourceMapCache } from '../util/sourcemap';
import type { WorkerHandle } from './worker-handle';

/** How long the master waits, after the exit, for the last bytes of the worker's stderr. */
const STDERR_SETTLE_MS = 500;
/** How long a crash dump waits for a memory dump of the same worker still being written. */
const MEMORY_DUMP_WAIT_MS = 3000;
/** How long a crash dump may wait for its stacks to be source-mapped: a map is read once, then cached. */
const SOURCE_MAP_MS = 1000;
const OOM_TEXT = /JavaScript heap out of memory|Reached heap limit|Allocation failed/;

/** What Node's fatal-error report says that a crash dump keeps (the rest, environment included, is dropped). */
export interface FatalReport {
  event: string;
  trigger: string;
  heapSpaces?: Record<string, Record<string, number>>;
}

/** The inputs of a death, as the master has them after the exit. */
export interface Death {
  code: number | null;
  signal: string | null;
  record?: CrashRecord;
  report?: FatalReport;
  stderrTail: string;
  /** The cgroup's oom_kill count before and after, when readable. */
  oomKills?: { before: number; after: number };
}

function at(stack: Frame[] | undefined): string {
  const f = stack?.find((x) => x.app) ?? stack?.[0];
  return f ? ` in ${f.function} (${f.file}:${f.line})` : '';
}

/** Which kind of death, and one sentence on why. Pure: the tests feed it deaths. */
export function classify(d: Death): { kind: CrashKind; cause: string } {
  const r = d.record;
  const ended = d.signal ? `the worker died of ${d.signal}` : `the worker exited with code ${d.code}`;
  if (r?.error) {
    const e = r.error;
    const what = `${e.type}: ${e.message.split('\n')[0]}`;
    if (e.origin === 'unhandledRejection') return { kind: 'unhandled-rejection', cause: `a promise rejected with ${what}${at(e.stack)} and nothing handled it; ${ended}` };
    return { kind: 'uncaught-exception', cause: `uncaught ${what}, thrown${at(e.stack)}; ${ended}` };
  }
  if (d.signal === 'SIGABRT' && (OOM_TEXT.test(d.report?.event ?? '') || OOM_TEXT.test(d.stderrTail))) {
    return { kind: 'out-of-memory', cause: `the V8 heap reached its limit (${d.report?.event || 'JavaScript heap out of memory'}); Node aborted the worker` };
  }
  const call = r?.exitCall;
  if (call?.fn === 'abort') return { kind: 'signal', cause: `process.abort() was called${at(call.stack)}: ${ended}` };
  if (d.signal === null) {
    if (call) return { kind: 'exit-called', cause: `process.exit(${call.code ?? ''}) was called${at(call.stack)}; ${ended}` };
    return { kind: 'exit-called', cause: `${ended} without an error or a process.exit() call: its event loop ran out of work (a server closed?), or process.exitCode was set` };
  }
  return { kind: 'signal', cause: signalCause(d) };
}

function signalCause(d: Death): string {
  switch (d.signal) {
    case 'SIGKILL': {
      const k = d.oomKills;
      if (!k) return 'SIGKILL from outside superv, or the kernel\'s OOM killer (the cgroup\'s memory.events is not readable to tell them apart)';
      return k.after > k.before
        ? `killed by the kernel's OOM killer (the cgroup's oom_kill count went from ${k.before} to ${k.after})`
        : `SIGKILL from outside superv (not the kernel's OOM killer: the cgroup's oom_kill count stayed ${k.after})`;
    }
    case 'SIGSEGV': case 'SIGBUS': case 'SIGILL': case 'SIGFPE':
      return `native crash (${d.signal}): a bug in node or in a native addon; the stderr tail may hold its backtrace`;
    case 'SIGABRT':
      return 'native abort (SIGABRT): a failed assertion in node or a native addon; the stderr tail says which';
    default:
      return `${d.signal} from outside superv: the worker did not handle it and died`;
  }
}

/**
 * The kernel OOM killer's count for the master's cgroup (its workers share it), when readable: cgroup v2's
 * memory.events, else v1's memory.oom_control; both have an `oom_kill N` line.
 */
export function readOomKills(): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3).trim();
  const v1 = lines.map((l) => /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/.exec(l)?.[1]).find((p) => p !== undefined);
  const files = [
    ...(v1 !== undefined ? [join('/sys/fs/cgroup/memory', v1, 'memory.oom_control')] : []),
    ...(v2 !== undefined ? [join('/sys/fs/cgroup', v2, 'memory.events'), join('/sys/fs/cgroup/unified', v2, 'memory.events')] : []),
  ];
  for (const f of files) {
    try {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(f, 'utf8'));
      if (m) return Number(m[1]);
    } catch {
      // the next layout
    }
  }
  return undefined;
}

/** crash_locals: the watchdog's frames at the throw carry locals; the error's parsed frames get them by place. */
function withLocals(stack: Frame[], paused: readonly Frame[]): void {
  for (const f of stack) {
    const at = paused.find((p) => p.file === f.file && p.line === f.line && p.locals !== undefined);
    if (at) f.locals = at.locals;
  }
}

async function readJson(file: string): Promise<unknown> {
  try {
    const text = await fs.readFile(file, 'utf8');
    await fs.unlink(file).catch(() => undefined);
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function fatalReport(u: unknown): FatalReport | undefined {
  const r = u as { header?: { event?: unknown; trigger?: unknown }; javascriptHeap?: { heapSpaces?: unknown } } | undefined;
  if (!r?.header) return undefined;
  const spaces = r.javascriptHeap?.heapSpaces;
  return {
    event: String(r.header.event ?? ''),
    trigger: String(r.header.trigger ?? ''),
    heapSpaces: typeof spaces === 'object' && spaces !== null ? spaces as Record<string, Record<string, number>> : undefined,
  };
}

export interface CrashDeps {
  log: Logger;
  ctx: () => DumpContext;
  metrics: () => Metrics | undefined;
}

export class CrashRecorder {
  private readonly tails = new Map<number, OutputTail>();
  private readonly memoryDumps = new Map<number, { capture?: Capture; file: Promise<string | undefined> }>();
  private readonly limiter = new CrashLimiter();
  private readonly sourceMaps = new SourceMapCache();
  private oomKills = readOomKills();
  private madeDir = '';

  constructor(private readonly deps: CrashDeps) {}

  /** The crash dir for the workers about to be spawned ('' when it cannot be made: they then record nothing). */
  dir(): string {
    const dumpDir = this.deps.ctx().dumpDir;
    const dir = crashDirOf(dumpDir);
    if (this.madeDir === dir) return dir;
    try {
      mkdirSync(dumpDir, { recursive: true, mode: 0o700 });
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.madeDir = dir;
      return dir;
    } catch (err) {
      this.deps.log.warn({ event: 'crash-dir-failed', dir, err: (err as Error).message },
        `cannot create ${dir}: crash dumps will only hold what the master knows`);
      return '';
    }
  }

  /**
   * At spawn: keep the tail of the worker's stderr. `recorded`: the output recorder already writes its lines
   * on (as sourced records), so only keep the tail; otherwise pass every byte on to our stderr as well.
   */
  watch(h: WorkerHandle, recorded: boolean): void {
    const err = h.worker.process.stderr;
    if (!err) return;
    const tail = recorded ? OutputTail.watch(err) : OutputTail.tee(err, process.stderr);
    this.tails.set(h.id, tail);
    h.stderrTail = tail;
  }

  /**
   * The watchdog saw the heap pass heap_warn: a memory dump now, while the worker lives. A crash dump that
   * follows (out of memory) links to it and reuses its stack, which Node's fatal-error report cannot give.
   */
  heapWarning(h: WorkerHandle, usedBytes: number, limitBytes: number, capture: Capture): void {
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    const summary = `the V8 heap of worker ${h.id} (pid ${h.pid}) is at ${Math.round((usedBytes / limitBytes) * 100)}% of its limit ` +
      `(${mib(usedBytes)} used, old space limit ${mib(limitBytes)}; heap_warn): dumped while it is still alive`;
    this.deps.log.warn({ event: 'heap-warning', worker: h.id, pid: h.pid, usedBytes, limitBytes }, summary);
    const file = dumpWorker(h, { reason: 'memory', summary, kill: false, capture }, this.deps.ctx());
    this.memoryDumps.set(h.id, { capture, file });
  }

  /** On every exit. `planned`: superv ended it (or is stopping): nothing to explain, only files to clean. */
  async reaped(h: WorkerHandle, code: number | null, signal: string | null, planned: boolean): Promise<void> {
    const tail = this.tails.get(h.id);
    this.tails.delete(h.id);
    const memory = this.memoryDumps.get(h.id);
    this.memoryDumps.delete(h.id);
    const dir = this.madeDir;
    const [rec, rep, locals] = dir === '' ? [undefined, undefined, undefined]
      : await Promise.all([readJson(crashRecordPath(dir, h.pid)), readJson(join(dir, nodeReportName(h.pid))), readJson(crashLocalsPath(dir, h.pid))]);
    if (planned) return;
    if (tail) await Promise.race([tail.ended, new Promise((r) => setTimeout(r, STDERR_SETTLE_MS).unref())]);
    const before = this.oomKills;
    const after = signal === 'SIGKILL' ? readOomKills() : before;
    this.oomKills = after;
    const record = rec as CrashRecord | undefined;
    if (record?.error?.stack && Array.isArray(locals)) withLocals(record.error.stack, locals as Frame[]);
    const death: Death = {
      code, signal, record, report: fatalReport(rep), stderrTail: tail?.text() ?? '',
      oomKills: before !== undefined && after !== undefined ? { before, after } : undefined,
    };
    const memoryFile = memory ? await Promise.race([memory.file, new Promise<undefined>((r) => setTimeout(() => r(undefined), MEMORY_DUMP_WAIT_MS).unref())]) : undefined;
    await this.write(h, death, memory?.capture, memoryFile);
  }

  private async write(h: WorkerHandle, d: Death, memoryCapture: Capture | undefined, memoryFile: string | undefined): Promise<void> {
    const { kind, cause } = classify(d);
    const r = d.record;
    const hb = h.heartbeat;
    const signature = crashSignature({
      kind, error: r?.error, exitCall: r?.exitCall, signal: d.signal, exitCode: d.code, stack: kind === 'out-of-memory' ? memoryCapture?.stack : undefined,
    });
    this.deps.metrics()?.died(kind);
    const decision = this.limiter.decide(signature);
    const log = this.deps.log;
    const fields = { event: 'worker-crash', worker: h.id, pid: h.pid, kind, signature, occurrences: decision.occurrences };
    if (!decision.write) {
      log.info({ ...fields, dumped: false }, `worker ${h.id} died (${kind}): ${signature} — ${decision.occurrences} time(s); identical crash already dumped, counted only`);
      return;
    }
    log.warn(fields, `worker ${h.id} (pid ${h.pid}) died (${kind}): ${cause}`);

    // The request: the one the failing code ran for, else the only one in flight, else the oldest (a guess).
    const inflight: RequestInfo[] = r?.inflight ?? memoryCapture?.inflight ?? hb?.oldest ?? [];
    const running = r?.running ?? memoryCapture?.running;
    const only = inflight.length === 1 || (!r && hb?.inflight === 1) ? inflight[0] : undefined;
    const oldest = [...inflight].sort((a, b) => a.startedAt - b.startedAt)[0];
    const request = running ?? only ?? oldest;
    const requestBasis = running ? 'context' : only ? 'only-inflight' : oldest ? 'oldest-inflight' : undefined;
    const total = r ? inflight.length : Math.max(hb?.inflight ?? 0, inflight.length);
    const collateral = running ? Math.max(0, total - 1) : total;

    const crash: CrashInfo = {
      kind, exitCode: d.code, signal: d.signal, cause, fingerprint: signature,
      error: r?.error ? { type: r.error.type, message: r.error.message, stack: r.error.stack, cause: r.error.cause } : undefined,
      exitCall: r?.exitCall,
      requestBasis, collateral,
      stderrTail: d.stderrTail || undefined,
      heapSpaces: d.report?.heapSpaces,
      memoryDump: memoryFile,
      suppressed: decision.suppressed > 0 ? decision.suppressed : undefined,
      occurrences: decision.occurrences,
    };
    // The worker's error stack is text with generated positions (the app's compiled JS): map them back to the
    // source as timeout dumps do. In place: the capture's stack is the same array.
    const deadline = Date.now() + SOURCE_MAP_MS;
    for (const stack of [crash.error?.stack, ...(crash.error?.cause ?? []).map((c) => c.stack), crash.exitCall?.stack]) {
      if (stack) await mapFrames(stack, this.sourceMaps, deadline).catch(() => undefined);
    }
    const capture = this.capture(h, r, memoryCapture, kind);
    const lost = collateral > 0 ? `; ${collateral} ${running ? 'other ' : ''}request(s) in flight died with it` : '';
    const req = request ? `, ${running ? 'while running' : 'with in flight'} ${request.method} ${request.url}` : '';
    const again = decision.suppressed > 0 ? ` (${decision.suppressed} identical crash(es) since the last dump were counted, not written)` : '';
    await dumpDeadWorker(h, {
      time: Date.now(),
      summary: `worker ${h.id} (pid ${h.pid}) died: ${cause}${req}${lost}; it was replaced${again}`,
      capture,
      captureError: capture ? undefined : 'the worker ran no JS before it died: what is here is what the master knew',
      request,
      crash,
    }, this.deps.ctx());
  }

  /** The worker's record shaped as a capture, so every viewer shows its stack, requests and heap as usual. */
  private capture(h: WorkerHandle, r: CrashRecord | undefined, memoryCapture: Capture | undefined, kind: CrashKind): Capture | undefined {
    const hb = h.heartbeat;
    if (r) {
      return {
        complete: true, elapsedMs: 0, loop: { blocked: false, blockedForMs: 0 },
        running: r.running, inflight: r.inflight,
        stack: r.error?.stack ?? r.exitCall?.stack,
        heap: r.heap, memory: r.memory, eventLoopDelay: r.eventLoopDelay ?? hb?.eventLoopDelay, served: r.served,
      };
    }
    if (kind === 'out-of-memory' && memoryCapture) {
      // Node's report has no JS stack at a failed allocation ("Unavailable"): the memory dump's is the one.
      return { ...memoryCapture, incomplete: 'taken when the heap neared its limit, before the worker ran out of memory', complete: false };
    }
    if (!hb) return undefined;
    return {
      complete: false, incomplete: 'the worker ran no JS before it died: this is its last heartbeat', elapsedMs: 0,
      loop: { blocked: false, blockedForMs: 0 }, inflight: hb.oldest, eventLoopDelay: hb.eventLoopDelay, memory: { ...hb.memory },
    };
  }
}
