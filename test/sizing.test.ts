// `workers: max` is the CPUs this process may use, not the host's: under `taskset`, and in a cgroup with a
// CPU quota (a real one, made here when the machine lets us: cgroup v1 or v2), with the memory limit checked
// against the workers' measured RSS. The cgroup file formats are checked on a fake tree too (pure parsing).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cgroupCpuQuota, cgroupMemoryLimit, workersForQuota, type ReadText } from '../src/config/cpu-budget';
import { poolOverMemory } from '../src/master/pool-size';
import { CLI, FIXTURES, Superv, cli, freePort, killAll, tempDir } from './helpers';

const APP = join(FIXTURES, 'app.js');
const made: string[] = [];
after(async () => {
  await killAll();
  // A cgroup can be removed once its last process has been reaped, which may take a moment after the kill.
  for (const dir of made.reverse()) {
    for (let i = 0; i < 50; i++) {
      try { rmdirSync(dir); break; } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
  }
});

const fake = (files: Record<string, string>): ReadText => (p) => files[p];

describe('cgroup limits (file formats)', () => {
  test('v2: the tightest cpu.max and memory.max from the process\'s cgroup up to the root', () => {
    const read = fake({
      '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
      '/sys/fs/cgroup/cgroup.controllers': 'cpu memory',
      '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': '150000 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/c1/memory.max': '1073741824\n',
      '/sys/fs/cgroup/kubepods/memory.max': 'max\n',
    });
    assert.equal(cgroupCpuQuota(read), 1.5);
    assert.equal(cgroupMemoryLimit(read), 2 ** 30);
    assert.equal(cgroupCpuQuota(fake({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cgroup.controllers': '', '/sys/fs/cgroup/cpu.max': 'max 100000' })), undefined);
  });

  test('v1: cfs quota and memory.limit_in_bytes (2^63 is no limit)', () => {
    const read = fake({
      '/proc/self/cgroup': '4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '250000',
      '/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000',
      '/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes': '9223372036854771712',
    });
    assert.equal(cgroupCpuQuota(read), 2.5);
    assert.equal(cgroupMemoryLimit(read), undefined);
  });

  test('whole workers from a quota: nearest CPU, halves down, at least 1', () => {
    assert.deepEqual([0.2, 0.5, 1, 1.5, 1.6, 2.5, 2.8, 16].map(workersForQuota), [1, 1, 1, 1, 2, 2, 3, 16]);
  });

  test('the pool against the memory limit: the largest measured RSS × workers, plus the master', () => {
    const M = 2 ** 20;
    assert.equal(poolOverMemory(300 * M, 4, [50 * M, 60 * M], 40 * M), undefined, '280 MiB fit in 300');
    assert.deepEqual(poolOverMemory(200 * M, 4, [50 * M, 60 * M], 40 * M), { needBytes: 280 * M, limitBytes: 200 * M, perWorkerBytes: 60 * M });
    assert.equal(poolOverMemory(undefined, 64, [60 * M], 40 * M), undefined);
  });
});

async function started(s: Superv): Promise<{ workers: number; sized: string }> {
  await s.waitEvent('master-ready', 1, 30000);
  return { workers: Number(s.events('master-start')[0]!.workers), sized: String(s.events('pool-sized')[0]!.msg) };
}

describe('workers: max', () => {
  test('under taskset -c 0: one worker, and the log says why', async (t) => {
    try { execFileSync('taskset', ['-c', '0', 'true']); } catch { t.skip('taskset is not available'); return; }
    const s = new Superv(['-c', '0', process.execPath, CLI, 'start', APP, '--workers', 'max', '--dump-dir', tempDir()],
      { command: 'taskset', env: { PORT: String(await freePort()) } });
    const { workers, sized } = await started(s);
    assert.equal(workers, 1);
    assert.match(sized, /^pool: 1 worker\(s\) \(= workers: max\); 1 CPU\(s\) this process may use \(affinity 1 of \d+ host CPU\(s\)/);
    await s.kill();
  });

  test('in a cgroup with a 1.5 CPU quota and a memory limit: one worker; scaling past the memory is warned about', async (t) => {
    const name = `superv-test-${process.pid}`;
    const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
    const dirs = v2 ? [join('/sys/fs/cgroup', name)] : [join('/sys/fs/cgroup/cpu', name), join('/sys/fs/cgroup/memory', name)];
    try {
      for (const d of dirs) { mkdirSync(d); made.push(d); }
      if (v2) {
        writeFileSync(join(dirs[0]!, 'cpu.max'), '150000 100000');
        writeFileSync(join(dirs[0]!, 'memory.max'), String(400 * 2 ** 20));
      } else {
        writeFileSync(join(dirs[0]!, 'cpu.cfs_quota_us'), '150000');
        writeFileSync(join(dirs[1]!, 'memory.limit_in_bytes'), String(400 * 2 ** 20));
      }
    } catch (err) {
      t.skip(`cannot make a cgroup here (${(err as Error).message}): the file formats are checked above`);
      return;
    }
    // The shell moves itself into the cgroup, then becomes superv: every worker is forked inside it.
    const join1 = dirs.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ');
    const s = new Superv(['-c', `${join1} && exec "$0" "$@"`, process.execPath, CLI, 'start', APP, '--name', 'quota', '--workers', 'max',
      '--heartbeat-interval', '200ms', '--dump-dir', tempDir()], { command: '/bin/sh', env: { PORT: String(await freePort()) } });
    const { workers, sized } = await started(s);
    assert.equal(workers, 1, sized);
    assert.match(sized, /cgroup CPU quota 1\.5 CPU\(s\)\); cgroup memory limit 400 MiB/);
    assert.match(readFileSync(`/proc/${s.pid}/cgroup`, 'utf8'), new RegExp(name));
    // 12 workers of the measured RSS (~50 MiB) do not fit in 400 MiB: warned as soon as one worker has reported
    // its RSS, before the new ones are forked.
    const r = await cli(s.runDir, 'scale', 'quota', '12');
    assert.equal(r.code, 0, r.stderr);
    const [warn] = await s.waitEvent('pool-over-memory', 1, 15000);
    assert.match(String(warn!.msg), /^12 worker\(s\) × \d+ MiB RSS measured now, plus the master, make \d+ MiB: over the cgroup memory limit of 400 MiB/);
    await s.kill();
  });
});
