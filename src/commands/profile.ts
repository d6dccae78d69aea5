// `superv profile NAME [WORKER] [--duration 10s] [--out FILE] [--format cpuprofile|pprof]` and
// `superv heap-snapshot NAME WORKER [--out FILE]`: one request over the control socket; the worker's
// watchdog writes the file itself (master/on-demand.ts, worker/on-demand.ts), 0600. No port is opened.
// The path is checked here first, so an unwritable one is refused before a worker spends 10 s profiling.

import { accessSync, constants as fsc, lstatSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { request } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { MAX_PROFILE_MS } from '../control/protocol';
import { parseDuration } from '../config/units';
import { SupervError } from '../errors';
import { writeFileAtomic } from '../util/files';
import { cpuProfileToPprof } from './pprof';

interface Written { worker: number; pid: number; file: string; bytes: number }

interface Parsed { positional: string[]; out?: string; durationMs: number; format: 'cpuprofile' | 'pprof'; json: boolean; runDir: string }

const PROFILE_USAGE = 'superv profile NAME [WORKER] [--duration 10s] [--out FILE] [--format cpuprofile|pprof]';
const SNAPSHOT_USAGE = 'superv heap-snapshot NAME WORKER [--out FILE]';

function parse(argv: string[], usage: string, allowed: ReadonlySet<string>): Parsed {
  const p: Parsed = { positional: [], durationMs: 10_000, format: 'cpuprofile', json: false, runDir: resolve(defaultRunDir()) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    if (flag.startsWith('-') && !allowed.has(flag)) throw new SupervError('SUPERV_ERR_USAGE', `unknown option ${flag}; ${usage}`);
    if (flag === '--json') { p.json = true; continue; }
    if (!flag.startsWith('-')) { p.positional.push(a); continue; }
    const v = eq > 0 && a.startsWith('--') ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '') throw new SupervError('SUPERV_ERR_BAD_VALUE', flag, 'it needs a value');
    if (flag === '--out') p.out = v;
    else if (flag === '--run-dir') p.runDir = resolve(v);
    else if (flag === '--duration') {
      const ms = parseDuration(v);
      if (ms === undefined || ms < 100 || ms > MAX_PROFILE_MS) {
        throw new SupervError('SUPERV_ERR_BAD_VALUE', '--duration', `${JSON.stringify(v)}: expected a duration from 100ms to ${MAX_PROFILE_MS / 60_000}m, such as 10s`);
      }
      p.durationMs = ms;
    } else if (flag === '--format') {
      if (v !== 'cpuprofile' && v !== 'pprof') throw new SupervError('SUPERV_ERR_BAD_VALUE', '--format', `${JSON.stringify(v)}: expected cpuprofile or pprof`);
      p.format = v;
    }
  }
  return p;
}

function workerArg(v: string | undefined, usage: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new SupervError('SUPERV_ERR_BAD_VALUE', 'WORKER', `${JSON.stringify(v)}: expected a worker id (superv status shows them); ${usage}`);
  return Number(v);
}

/** The output path, absolute, in an existing writable directory, not a directory nor a symlink itself. */
function checkOut(file: string, flag = '--out'): string {
  const abs = resolve(file);
  const dir = dirname(abs);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, fsc.W_OK);
  } catch (e) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', flag, `cannot write ${abs}: its directory ${dir} is not a writable directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const st = (() => { try { return lstatSync(abs); } catch { return undefined; } })();
  if (st && !st.isFile()) throw new SupervError('SUPERV_ERR_BAD_VALUE', flag, `cannot write ${abs}: it exists and is not a regular file`);
  return abs;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

function report(p: Parsed, r: { files: Written[] }, what: string): void {
  if (p.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else for (const f of r.files) process.stdout.write(`${f.file}: ${what} of worker ${f.worker} (pid ${f.pid}), ${f.bytes} bytes\n`);
}

export async function runProfile(argv: string[]): Promise<number> {
  const p = parse(argv, PROFILE_USAGE, new Set(['--duration', '--out', '--format', '--json', '--run-dir']));
  const [name, w, ...extra] = p.positional;
  if (!name || extra.length > 0) throw new SupervError('SUPERV_ERR_USAGE', PROFILE_USAGE);
  const worker = workerArg(w, PROFILE_USAGE);
  const ext = p.format === 'pprof' ? '.pb.gz' : '.cpuprofile';
  const out = checkOut(p.out ?? `${name}-${stamp()}${ext}`);
  // The watchdog writes V8's own format; pprof is made from it here, then replaces it.
  const raw = p.format === 'pprof' ? `${out}.cpuprofile.tmp` : out;
  if (p.format === 'pprof') checkOut(raw);
  process.stderr.write(`superv: profiling ${worker === undefined ? 'every worker' : `worker ${worker}`} of ${name} for ${p.durationMs / 1000} s…\n`);
  const r = await request(p.runDir, name, { cmd: 'profile', worker, durationMs: p.durationMs, file: raw }, p.durationMs + 60_000) as { files: Written[] };
  if (p.format === 'pprof') {
    for (const f of r.files) {
      const target = f.file.slice(0, -'.cpuprofile.tmp'.length);
      const pb = cpuProfileToPprof(JSON.parse(readFileSync(f.file, 'utf8')) as Parameters<typeof cpuProfileToPprof>[0]);
      await writeFileAtomic(target, pb, 0o600);
      (await import('node:fs')).unlinkSync(f.file);
      f.file = target;
      f.bytes = pb.length;
    }
  }
  report(p, r, `CPU profile (${p.format === 'pprof' ? 'pprof, gzipped' : 'V8 .cpuprofile: Chrome DevTools, speedscope'})`);
  return 0;
}

export async function runHeapSnapshot(argv: string[]): Promise<number> {
  const p = parse(argv, SNAPSHOT_USAGE, new Set(['--out', '--json', '--run-dir']));
  const [name, w, ...extra] = p.positional;
  if (!name || w === undefined || extra.length > 0) throw new SupervError('SUPERV_ERR_USAGE', SNAPSHOT_USAGE);
  const worker = workerArg(w, SNAPSHOT_USAGE)!;
  const out = checkOut(p.out ?? `${name}-w${worker}-${stamp()}.heapsnapshot`);
  process.stderr.write(`superv: worker ${worker} of ${name} pauses while its heap is written (about a second per 100 MB of heap); ` +
    'superv does not take that pause for a stall\n');
  const r = await request(p.runDir, name, { cmd: 'heap-snapshot', worker, file: out }, 6 * 60_000) as { files: Written[] };
  report(p, r, 'heap snapshot (Chrome DevTools, Memory tab)');
  return 0;
}
