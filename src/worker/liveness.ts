// The main thread's proof of life for the watchdog thread, and the clock of its loop-delay figure: a stamp
// of the time in shared memory, written by a timer, whose lateness is the event-loop delay.
//
// A timer wake-up costs ~0.1–0.2 ms of CPU on the VMs we measured, whatever it does, and an idle worker
// had nothing else to pay for: the 50 ms tick alone was 0.4 % of a core per idle worker. So the tick runs
// only while the worker serves HTTP. Two modes, one decision (`park`, `unpark`):
//   - serving: a 50 ms tick. A blocked loop is seen within 250 ms, and a block's length is known to 50 ms.
//   - parked (no request in flight and none finished since the last heartbeat): no tick of its own; the
//     heartbeat stamps instead, once per heartbeat interval. The first request to start unparks it before
//     the app's handler runs (a diagnostics-channel subscriber that exists only while parked, so a busy
//     worker's requests pay nothing for it), so a request that blocks the loop is timed from its start.
// What a parked worker gives up: a block not started by a request (a timer of the app's own) is timed from
// the last heartbeat, so the watchdog may overstate it by up to one heartbeat interval, the same bound as
// the master's own silence measure; and such a block shows in the loop delay only if it delays a heartbeat.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { guarded } from './guard';
import type { LoopDelay } from './heartbeat';
import type { RequestTable } from './request-table';

/** The serving tick: how often the main thread proves it is alive and samples its loop delay. */
export const SERVING_TICK_MS = 50;
/** Silence past the expected stamp interval by more than this means the loop is blocked. */
export const BLOCKED_MARGIN_MS = 200;
/** Int32 slots of the liveness SharedArrayBuffer. */
const L_CADENCE = 0;

const REQUEST_START = 'http.server.request.start';

/** The watchdog's side: how long the main thread has been silent past what its current mode allows. */
export function blockedAfterMs(liveness: Int32Array): number {
  return Atomics.load(liveness, L_CADENCE) + BLOCKED_MARGIN_MS;
}

/** The watchdog's side: whether the main thread is serving (stamping every SERVING_TICK_MS) or parked. */
export function isServing(liveness: Int32Array): boolean {
  return Atomics.load(liveness, L_CADENCE) === SERVING_TICK_MS;
}

/**
 * The watchdog's side: calls `fn` once the main thread starts serving (it notifies), or after `ms`, whichever
 * comes first. The timer is ref'd like the watchdog's others; the wait only shortens it.
 */
export function onServingOrAfter(liveness: Int32Array, ms: number, fn: () => void): void {
  let fired = false;
  const fire = (): void => { if (!fired) { fired = true; clearTimeout(timer); fn(); } };
  const timer = setTimeout(fire, ms);
  const w = Atomics.waitAsync(liveness, L_CADENCE, Atomics.load(liveness, L_CADENCE), ms);
  // Not async: the cadence changed between the caller's look and this wait; the caller looks again now
  // rather than after `ms` (which may be long: the parked sampler's).
  if (w.async) void w.value.then((r) => { if (r === 'ok') fire(); });
  else setImmediate(fire);
}

export function livenessBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

export class Liveness {
  private readonly cadence: Int32Array;
  private timer: NodeJS.Timeout | undefined;
  private parked = false;
  private subscribed = false;
  private servedAtBeat = -1;
  // Runs inside the app's request path (a channel publish): guarded, so superv's error never reaches the app.
  private readonly onRequestStart = guarded('the liveness wake-up', (): void => this.unpark());

  constructor(
    private readonly table: RequestTable,
    sab: SharedArrayBuffer,
    private readonly eld: LoopDelay,
    private readonly served: () => number,
    private readonly inflight: () => number,
    private readonly heartbeatMs: number,
  ) {
    this.cadence = new Int32Array(sab);
  }

  /** Starts serving (a worker that just booted is about to get its first requests). */
  start(): void {
    this.unpark();
  }

  /**
   * Called by every heartbeat: stamps (the parked mode's only stamp), then parks when nothing was served
   * since the last heartbeat and nothing is in flight. Returns whether the worker is parked.
   */
  beat(): boolean {
    const served = this.served();
    if (this.parked) {
      this.stamp();
    } else if (served === this.servedAtBeat && this.inflight() === 0) {
      this.park();
    }
    this.servedAtBeat = served;
    return this.parked;
  }

  /** Also run at every stamp (the heap warning's publisher, when heap_warn is on). */
  onStamp: (() => void) | undefined;

  private stamp(): void {
    this.table.tick(Date.now(), this.served());
    this.eld.sample();
    this.onStamp?.();
  }

  private park(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.parked = true;
    Atomics.store(this.cadence, L_CADENCE, this.heartbeatMs);
    this.eld.expect(this.heartbeatMs);
    // Subscribed from a timer, never from inside a publish (see unpark).
    if (!this.subscribed) subscribe(REQUEST_START, this.onRequestStart);
    this.subscribed = true;
  }

  private unpark(): void {
    if (this.timer !== undefined) return;
    this.parked = false;
    Atomics.store(this.cadence, L_CADENCE, SERVING_TICK_MS);
    // A watchdog sleeping through the parked time (onServing) wakes now: serving is when heaps grow.
    Atomics.notify(this.cadence, L_CADENCE);
    this.eld.expect(SERVING_TICK_MS);
    this.table.tick(Date.now(), this.served());
    this.timer = setInterval(guarded('the liveness tick', () => {
      // Unsubscribed here rather than in the subscriber: removing a subscriber while the channel publishes
      // could make it skip the next one (the request tracker's).
      if (this.subscribed) {
        unsubscribe(REQUEST_START, this.onRequestStart);
        this.subscribed = false;
      }
      this.stamp();
    }), SERVING_TICK_MS);
    this.timer.unref();
  }
}
