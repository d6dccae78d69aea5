// Always-on CPU sampling, the watchdog thread's half (cpu-probe.ts is the main thread's). Every
// `cpu_sample_interval` on average (jittered ±50 %, so a timer of the app's own at a round period cannot
// phase-lock with it) the watchdog asks the main thread for one sample through its inspector session: the
// interrupted stack and the request it belongs to, or "idle". The asks go out on the watchdog's own schedule,
// whether or not the previous one was answered, and each stands for the time since the previous ask: the
// sampling times are then independent of what the main thread does, which is what makes the estimate
// unbiased. (Waiting for each answer before the next ask does not: a busy main thread answers late, and the
// wait before the late ask, partly idle, was credited to the busy code — +65 % on a 2 ms route, measured.)
// While an ask is unanswered (a long synchronous call) no other is sent: the time of those not sent goes to
// the one waiting, answered by the code that was stuck. (Queuing several made them all land at the first
// interrupt check, often a socket write after the handler: +57 % on a 2 ms route, +28 % with one, same host.)
//
// Why this and not V8's sampling profiler (the inspector's Profiler domain, or @datadog/pprof): the profiler's
// samples carry a stack and a time but not the request; attributing them needs a label per sample, which
// @datadog/pprof gets from AsyncContextFrame on Node 24 only, through a native addon in every worker. Here the
// label is read by the interrupted code's own AsyncLocalStorage, on every Node version superv supports, with
// no addon. Numbers and the error of the method: docs/cpu.md and docs/benchmarks.md.
//
// The sampled times are the main thread's busy *wall* time per route; on a machine with more runnable threads
// than cores a busy thread also waits for a CPU, which would inflate them. So each window's busy times are
// scaled to the main thread's actual CPU time in that window (the kernel's per-thread schedstat), which they
// then add up to: what is sampled says how the CPU divides among routes, the kernel says how much there was.
// CPU in a window with no busy sample (a parked worker's timers) goes to "no request".
//
// Only while the worker serves (liveness.ts): a parked worker is not woken. Samples are summed per route and
// stack here and sent to the master once a window, bounded.

import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Session } from 'node:inspector';
import { IDLE_ROUTE, NO_REQUEST_ROUTE, type CpuWindow } from '../dump/cpu';
import { RouteCache } from '../dump/route';
import { CPU_SAMPLE_EXPRESSION } from '../protocol';
import { isServing, onServingOrAfter } from './liveness';

/** How often the samples go to the master. */
const WINDOW_MS = 1000;
/** Bounds of one window: distinct stacks and frames (past them a sample counts for its route only). */
const MAX_STACKS = 1000;
const MAX_FRAMES = 4000;
/**
 * How long a parked worker's sampler (and its window flush) sleeps before it looks again: it is woken when
 * serving resumes, so this only bounds how late the CPU an idle worker spends outside requests (heartbeats,
 * the app's timers) reaches the master. Each wake-up of an idle fleet costs CPU (docs/benchmarks.md, idle):
 * a window every second from every idle worker was 8 master and 8 watchdog wake-ups a second for 8 workers.
 */
const PARKED_MS = 30_000;
/** One ask stands for no more than this (a main thread stuck longer is a timeout's business). */
const MAX_WEIGHT_MS = 60_000;
/** Asks waiting on a main thread that does not answer, at most. */
const MAX_OUTSTANDING = 1;

export interface CpuSamplerOptions {
  intervalMs: number;
  liveness: Int32Array;
  /** True while a capture holds the inspector (a paused main thread must not be sampled). */
  busy: () => boolean;
  send: (window: CpuWindow) => void;
}

/** The main thread's CPU time so far, ms (its schedstat: the main thread's tid is the pid); undefined when unreadable. */
export class MainThreadCpu {
  private fd: number | undefined;
  private readonly buf = Buffer.alloc(128);

  constructor() {
    try { this.fd = openSync(`/proc/self/task/${process.pid}/schedstat`, 'r'); } catch { this.fd = undefined; }
  }

  ms(): number | undefined {
    if (this.fd === undefined) return undefined;
    try {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      const ns = Number(this.buf.toString('latin1', 0, n).split(' ')[0]);
      return Number.isFinite(ns) ? ns / 1e6 : undefined;
    } catch {
      closeSync(this.fd);
      this.fd = undefined;
      return undefined;
    }
  }
}

export class CpuSampler {
  private frames = new Map<string, number>();
  private stacks = new Map<string, [string, number[], number]>();
  private samples = 0;
  private windowStart = 0;
  /** When the previous ask went out; 0 after a pause (the next one then stands for one interval). */
  private lastAsk = 0;
  private outstanding = 0;
  private readonly routes = new RouteCache();
  private readonly liveness: Int32Array;
  private readonly cpu = new MainThreadCpu();
  private cpuAtFlush: number | undefined;

  constructor(private readonly session: Session, private readonly opts: CpuSamplerOptions) {
    this.liveness = opts.liveness;
  }

  start(): void {
    this.cpuAtFlush = this.cpu.ms();
    setTimeout(() => this.tick(), this.nextDelay());
    setTimeout(() => this.flushTick(), WINDOW_MS);
  }

  /** Every WINDOW_MS while serving; parked with the sampler, so an idle worker sends nothing between beats. */
  private flushTick(): void {
    if (!isServing(this.liveness) && this.samples === 0) {
      // Nothing sampled: the CPU since the last window carries over (cpuAtFlush stays), and goes to the master
      // with the next window, as work outside any request.
      onServingOrAfter(this.liveness, PARKED_MS, () => this.flushOrCarry());
      return;
    }
    this.flush();
    setTimeout(() => this.flushTick(), WINDOW_MS);
  }

  /** Woken from parking: by serving (then the next window comes a WINDOW_MS later) or by the timeout (send). */
  private flushOrCarry(): void {
    if (!isServing(this.liveness)) this.flush();
    setTimeout(() => this.flushTick(), WINDOW_MS);
  }

  private nextDelay(): number {
    return this.opts.intervalMs * (0.5 + Math.random());
  }

  private tick(): void {
    if (!isServing(this.liveness) || this.opts.busy()) {
      this.lastAsk = 0;
      onServingOrAfter(this.liveness, PARKED_MS, () => this.tick());
      return;
    }
    setTimeout(() => this.tick(), this.nextDelay());
    if (this.outstanding >= MAX_OUTSTANDING) return;
    const now = performance.now();
    const weight = this.lastAsk === 0 ? this.opts.intervalMs : Math.min(MAX_WEIGHT_MS, now - this.lastAsk);
    this.lastAsk = now;
    this.outstanding++;
    try {
      this.session.post('Runtime.evaluate', { expression: CPU_SAMPLE_EXPRESSION, returnByValue: true, silent: true },
        (err, r?: { result?: { value?: unknown } }) => {
          this.outstanding--;
          const v = r?.result?.value;
          if (!err && typeof v === 'string') this.record(v, weight);
        });
    } catch {
      this.outstanding--;
    }
  }

  private record(sample: string, weight: number): void {
    const now = performance.now();
    if (this.samples === 0) this.windowStart = now - weight;
    this.samples++;
    const lines = sample.split('\n');
    const head = lines[0] ?? 'N';
    const route = head === 'I' ? IDLE_ROUTE : head.startsWith('R') ? this.routes.route(head.slice(1)) : NO_REQUEST_ROUTE;
    // Innermost first in the sample; outermost first in a folded stack.
    const idx: number[] = [];
    for (let i = lines.length - 1; i >= 1; i--) {
      const [name = '', file = '', line = '0'] = lines[i]!.split('\t');
      const key = `${name}\t${file}\t${line}`;
      let n = this.frames.get(key);
      if (n === undefined) {
        if (this.frames.size >= MAX_FRAMES) { idx.length = 0; break; }
        n = this.frames.size;
        this.frames.set(key, n);
      }
      idx.push(n);
    }
    const key = `${route}\n${idx.join(',')}`;
    let s = this.stacks.get(key);
    if (s === undefined) {
      const bare = `${route}\n`;
      s = this.stacks.size < MAX_STACKS ? [route, idx, 0] : this.stacks.get(bare) ?? [route, [], 0];
      this.stacks.set(s[1].length === idx.length ? key : bare, s);
    }
    s[2] += weight;
  }

  private flush(): void {
    const cpuNow = this.cpu.ms();
    const cpuMs = cpuNow !== undefined && this.cpuAtFlush !== undefined ? cpuNow - this.cpuAtFlush : undefined;
    this.cpuAtFlush = cpuNow;
    if (this.samples === 0 && !(cpuMs !== undefined && cpuMs > 0)) return;
    let busy = 0;
    for (const [route, , ms] of this.stacks.values()) if (route !== IDLE_ROUTE) busy += ms;
    if (cpuMs !== undefined && busy === 0 && cpuMs > 0) this.stacks.set(`${NO_REQUEST_ROUTE}\n`, [NO_REQUEST_ROUTE, [], cpuMs]);
    const scale = cpuMs !== undefined && busy > 0 ? cpuMs / busy : 1;
    const window: CpuWindow = {
      ms: this.samples === 0 ? WINDOW_MS : Math.round(performance.now() - this.windowStart),
      samples: this.samples,
      frames: [...this.frames.keys()],
      stacks: [...this.stacks.values()].map(([r, i, ms]) => [r, i, Math.round((r === IDLE_ROUTE ? ms : ms * scale) * 100) / 100]),
    };
    this.frames = new Map();
    this.stacks = new Map();
    this.samples = 0;
    this.opts.send(window);
  }
}
