// `npm run soak`: about 10 minutes of load on an app that leaks memory and sometimes blocks, with
// max_memory, max_requests and timeout on. Passes when the master's RSS (within 5 MiB after warm-up), V8 heap
// and open fds stay flat, every
// stuck worker was dumped and replaced, and the dump dir stayed under dump_keep. Prints the figures.
//   npm run soak -- --minutes 2     a shorter run

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { request } from '../src/control/client';

const ROOT = join(__dirname, '..', '..');
const minutesArg = process.argv.indexOf('--minutes');
const MINUTES = minutesArg > 0 ? Number(process.argv[minutesArg + 1]) : 10;
const KEEP = 20;
/** How much the master's RSS may grow after warm-up. */
const RSS_GROWTH_MIB = 5;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Where the RSS is: anonymous memory (heaps, malloc) or file pages (the node binary's text, shared libraries). */
function rssParts(pid: number): { anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN) / 1024;
  return { anon: kib('RssAnon'), file: kib('RssFile') + kib('RssShmem') };
}

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function main(): Promise<void> {
  const port = await freePort();
  const dumps = mkdtempSync(join(tmpdir(), 'superv-soak-'));
  const runDir = mkdtempSync(join(tmpdir(), 'superv-soak-run-'));
  const master = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'cli.js'), 'start', join(ROOT, 'test', 'fixtures', 'soak-app.js'),
    '-w', '2', '--name', 'soak-app', '--timeout', '2s', '--dump-timeout', '2s', '--slow', '1s', '--max-memory', '256M', '--max-requests', '4000',
    '--max-requests-jitter', '500', '--dump-keep', String(KEEP), '--dump-dir', dumps, '--log-format', 'json', '--heartbeat-interval', '500ms'],
  { env: { ...process.env, PORT: String(port), SUPERV_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const events = new Map<string, number>();
  let buf = '';
  master.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const m = /"event":"([a-z-]+)"/.exec(buf.slice(0, nl));
      if (m) events.set(m[1]!, (events.get(m[1]!) ?? 0) + 1);
      buf = buf.slice(nl + 1);
    }
  });
  const stop = () => { try { process.kill(-master.pid!, 'SIGKILL'); } catch { /* gone */ } };
  process.on('exit', stop);
  while ((events.get('master-ready') ?? 0) === 0) await new Promise((r) => setTimeout(r, 100));

  const samples: Array<{ t: number; rss: number; anon: number; file: number; heap: number; heapTotal: number; external: number; newSpace: number; oldSpace: number; largeSpace: number; fds: number; dumps: number }> = [];
  const sample = async () => {
    const st = await request(runDir, 'soak-app', { cmd: 'status' }, 5000).catch(() => undefined) as { memory?: { heapUsed: number; heapTotal: number; external: number; heapSpaces?: Record<string, number> } } | undefined;
    samples.push({ t: Math.round(process.uptime()), rss: rssMiB(master.pid!), ...rssParts(master.pid!), heap: (st?.memory?.heapUsed ?? NaN) / 2 ** 20,
      heapTotal: (st?.memory?.heapTotal ?? NaN) / 2 ** 20, external: (st?.memory?.external ?? NaN) / 2 ** 20,
      newSpace: (st?.memory?.heapSpaces?.new ?? NaN) / 2 ** 20, oldSpace: (st?.memory?.heapSpaces?.old ?? NaN) / 2 ** 20,
      largeSpace: (st?.memory?.heapSpaces?.large_object ?? NaN) / 2 ** 20, fds: fds(master.pid!),
      dumps: readdirSync(dumps).filter((f) => f.endsWith('.json') && !f.startsWith('.')).length });
  };
  const timer = setInterval(() => void sample(), 15_000);
  const load = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: 8, duration: MINUTES * 60, timeout: 10 });
  clearInterval(timer);
  await sample();
  const fdKinds = new Map<string, number>();
  for (const fd of readdirSync(`/proc/${master.pid}/fd`)) {
    let target = '?';
    try { target = readlinkSync(`/proc/${master.pid}/fd/${fd}`).replace(/\d+/g, 'N'); } catch { /* closed meanwhile */ }
    fdKinds.set(target, (fdKinds.get(target) ?? 0) + 1);
  }
  stop();

  // Warm-up: the first fifth of the run (at least 3 samples), while V8 and malloc size themselves to the load.
  const warm = samples[Math.min(Math.max(2, Math.floor(samples.length / 5)), samples.length - 1)]!;
  const afterWarm = samples.slice(samples.indexOf(warm));
  const rssMax = Math.max(...afterWarm.map((s) => s.rss));
  const last = samples[samples.length - 1]!;
  const maxDumps = Math.max(...samples.map((s) => s.dumps));
  const stuck = events.get('worker-stuck') ?? 0;
  const lines = [
    `soak: ${MINUTES} min, ${load.requests.total} requests, ${load.errors} errors, ${load.timeouts} timeouts, ${load.non2xx} non-2xx`,
    `master RSS after warm-up (${warm.t} s) ${warm.rss.toFixed(1)} → ${last.rss.toFixed(1)} MiB (max ${rssMax.toFixed(1)}), V8 heap used ${warm.heap.toFixed(1)} → ${last.heap.toFixed(1)} MiB, open fds ${warm.fds} → ${last.fds}`,
    `workers stuck ${stuck}, killed ${events.get('worker-killed') ?? 0}, dumps written ${events.get('dump-written') ?? 0}, ` +
      `recycled for memory ${events.get('memory-limit') ?? 0}, drains ${events.get('worker-drain') ?? 0}; dump dir peak ${maxDumps} files (keep ${KEEP})`,
    'master fds by kind at the end: ' + [...fdKinds].map(([k, n]) => `${n}× ${k}`).join(', '),
    'samples (s: RSS = anon + file MiB, V8 heap used/total MiB (new, old, large-object spaces), external MiB, fds, dump files):',
    ...samples.map((s) => `  ${s.t}: ${s.rss.toFixed(1)} = ${s.anon.toFixed(1)} + ${s.file.toFixed(1)}, heap ${s.heap.toFixed(1)}/${s.heapTotal.toFixed(1)} (${s.newSpace.toFixed(1)}, ${s.oldSpace.toFixed(1)}, ${s.largeSpace.toFixed(1)}), ext ${s.external.toFixed(1)}, fds ${s.fds}, dumps ${s.dumps}`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const failures: string[] = [];
  const heaps = samples.slice(-3).map((s) => s.heap);
  if (Math.min(...heaps) - warm.heap > 15) failures.push(`master heap grew ${(Math.min(...heaps) - warm.heap).toFixed(1)} MiB`);
  // RSS is judged too: it is what the host pays, and it grew while the heap stayed flat (issue 18).
  const rssEnd = Math.min(...samples.slice(-3).map((s) => s.rss));
  if (rssEnd - warm.rss > RSS_GROWTH_MIB) failures.push(`master RSS grew ${(rssEnd - warm.rss).toFixed(1)} MiB after warm-up (limit ${RSS_GROWTH_MIB})`);
  if (last.fds - warm.fds > 10) failures.push(`master fds grew by ${last.fds - warm.fds}`);
  if (maxDumps > KEEP) failures.push(`dump dir reached ${maxDumps} > ${KEEP}`);
  if (stuck > 0 && (events.get('worker-killed') ?? 0) < stuck) failures.push('a stuck worker was not killed');
  if (stuck === 0) failures.push('no worker got stuck: the soak did not exercise the kill path');
  if (failures.length) {
    process.stdout.write(`SOAK FAILED: ${failures.join('; ')}\n`);
    process.exit(1);
  }
  process.stdout.write('soak passed\n');
  process.exit(0);
}

void main();
