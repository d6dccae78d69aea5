// How many workers the arbiter forks on one tick. Forking all of them in one synchronous loop kept the master
// from its signals for as long as the loop and the boot storm lasted (1024 workers: SIGTERM and SIGQUIT ignored
// for 10+ minutes; 48: a SIGTERM took 17.6 s). Paced through the loop, a stop is handled within a tick at any
// worker count, and the machine boots a few workers at a time instead of starving every one of them.

import { availableParallelism } from 'node:os';

/** Workers booting at once, at most: enough to keep every CPU busy booting, few enough to kill at once. */
export const MAX_BOOTING = Math.max(2, 2 * availableParallelism());
/** Forks per tick, at most: each is a synchronous spawn of a few ms, and the tick also handles signals. */
export const MAX_FORKS_PER_TICK = 4;

export function forksThisTick(wanted: number, counted: number, booting: number): number {
  return Math.max(0, Math.min(wanted - counted, MAX_BOOTING - booting, MAX_FORKS_PER_TICK));
}
