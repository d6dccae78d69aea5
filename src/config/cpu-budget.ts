// How many CPUs and how much memory this process may use: what `workers: max` means, and what the master
// checks the pool against. os.cpus() counts the host's CPUs, which is wrong under `taskset` and in every
// container with a CPU quota (Kubernetes' CPU limit): there it forked one worker per host CPU, each throttled.
// So: the CPU affinity (os.availableParallelism()) and the cgroup's CPU quota, the smaller; cgroup v2
// (`cpu.max`, `memory.max`) and v1 (`cpu.cfs_quota_us`, `memory.limit_in_bytes`), at every level from the
// process's own cgroup up to the mount's root (a limit set on a parent binds the child too).

import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';

/** Reads a file as text, undefined when it is not there (the seam unit tests feed with a fake tree). */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
};

const CGROUP_ROOT = '/sys/fs/cgroup';
/** v1 reports "no limit" as a page-rounded 2^63-1; anything above this is no limit. */
const NO_LIMIT_ABOVE = 2 ** 60;

export interface CpuBudget {
  /** What `max` becomes: the smaller of affinity and quota, at least 1. */
  cpus: number;
  hostCpus: number;
  /** os.availableParallelism(): the CPUs this process's affinity allows. */
  affinity: number;
  /** The cgroup CPU quota in CPUs (1.5 = 150 ms per 100 ms), when there is one. */
  quota?: number;
  /** The cgroup memory limit in bytes, when there is one. */
  memoryLimit?: number;
}

/** The cgroup path of this process for a v1 controller (`cpu`, `memory`) or v2 (`''`), from /proc/self/cgroup. */
function cgroupPath(selfCgroup: string, controller: string): string | undefined {
  for (const line of selfCgroup.split('\n')) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    if (controller === '' ? controllers === '' && line.startsWith('0::') : controllers!.split(',').includes(controller)) return path;
  }
  return undefined;
}

/** Every directory from `dir` up to `root`, deepest first. */
function upTo(root: string, dir: string): string[] {
  const out: string[] = [];
  for (let d = dir; d.startsWith(root); d = dirname(d)) {
    out.push(d);
    if (d === root) break;
  }
  return out;
}

/** The smallest value `parse` finds in `file` at any level of the process's cgroup, for v2 or a v1 controller. */
function tightest(read: ReadText, selfCgroup: string, v2File: string, v1: { controller: string; dirs: string[] }, parse: (dir: string, v2: boolean) => number | undefined): number | undefined {
  let best: number | undefined;
  const take = (n: number | undefined) => { if (n !== undefined && (best === undefined || n < best)) best = n; };
  const v2 = cgroupPath(selfCgroup, '');
  if (v2 !== undefined && read(join(CGROUP_ROOT, 'cgroup.controllers')) !== undefined) {
    for (const d of upTo(CGROUP_ROOT, join(CGROUP_ROOT, v2))) if (read(join(d, v2File)) !== undefined) take(parse(d, true));
  }
  const v1Path = cgroupPath(selfCgroup, v1.controller);
  if (v1Path !== undefined) {
    for (const mount of v1.dirs) {
      const root = join(CGROUP_ROOT, mount);
      for (const d of upTo(root, join(root, v1Path))) take(parse(d, false));
    }
  }
  return best;
}

/** The CPU quota in CPUs, or undefined when there is none. */
export function cgroupCpuQuota(read: ReadText = readText): number | undefined {
  const self = read('/proc/self/cgroup') ?? '';
  return tightest(read, self, 'cpu.max', { controller: 'cpu', dirs: ['cpu', 'cpu,cpuacct'] }, (d, v2) => {
    if (v2) {
      const [quota, period] = (read(join(d, 'cpu.max')) ?? '').trim().split(/\s+/);
      const q = Number(quota);
      const p = Number(period ?? 100_000);
      return quota === 'max' || !(q > 0) || !(p > 0) ? undefined : q / p;
    }
    const q = Number(read(join(d, 'cpu.cfs_quota_us')));
    const p = Number(read(join(d, 'cpu.cfs_period_us')));
    return q > 0 && p > 0 ? q / p : undefined;
  });
}

/** The memory limit in bytes, or undefined when there is none. */
export function cgroupMemoryLimit(read: ReadText = readText): number | undefined {
  const self = read('/proc/self/cgroup') ?? '';
  return tightest(read, self, 'memory.max', { controller: 'memory', dirs: ['memory'] }, (d, v2) => {
    const n = Number((read(join(d, v2 ? 'memory.max' : 'memory.limit_in_bytes')) ?? '').trim());
    return n > 0 && n < NO_LIMIT_ABOVE ? n : undefined;
  });
}

/**
 * Whole workers from a fractional quota: to the nearest CPU, halves down (1.5 CPUs → 1 worker: two would each
 * be throttled a quarter of the time; 1.6 → 2), at least 1.
 */
export function workersForQuota(quota: number): number {
  return Math.max(1, Math.ceil(quota - 0.5));
}

export function cpuBudget(read: ReadText = readText): CpuBudget {
  const affinity = availableParallelism();
  const quota = cgroupCpuQuota(read);
  const cpusNow = Math.max(1, Math.min(affinity, quota === undefined ? affinity : workersForQuota(quota)));
  return { cpus: cpusNow, hostCpus: cpus().length, affinity, quota, memoryLimit: cgroupMemoryLimit(read) };
}

/** One line: how `max` was sized. */
export function describeBudget(b: CpuBudget): string {
  const quota = b.quota === undefined ? 'no cgroup CPU quota' : `cgroup CPU quota ${Math.round(b.quota * 100) / 100} CPU(s)`;
  return `${b.cpus} CPU(s) this process may use (affinity ${b.affinity} of ${b.hostCpus} host CPU(s), ${quota})`;
}
