// `superv dumps [NAME]` lists the dumps of a dump dir; `superv dumps show FILE|latest` explains one.
// Which dir: --dir, else the dump dir of the running supervisor NAME (asked over its control socket), else
// $SUPERV_DUMP_DIR, else ./superv-dumps (the dump_dir default). NAME also filters on the dump's supervisor.

import { promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import { request } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { SupervError } from '../errors';
import { renderDumpList, renderDumpText, summarizeDump } from '../forensics/view';
import { fsSourceReader } from '../forensics/view/facts';
import { style, wantColor } from '../forensics/view/format';
import { loadDumps, readDump, resolveDumpTarget } from '../forensics/view/load';
import type { MasterStatus } from '../master/status';

/** Where a command writes and what it reads from its environment; tests pass their own. */
export interface CommandIO {
  out: { write(s: string): unknown; isTTY?: boolean };
  err: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIO(): CommandIO {
  return { out: process.stdout, err: process.stderr, env: process.env, cwd: process.cwd() };
}

export interface DumpArgs {
  positional: string[];
  dir?: string;
  runDir: string;
  json: boolean;
  all: boolean;
  html?: string;
  help: boolean;
}

/** Parses the flags the dump commands share; `flags` lists the ones this command accepts. */
export function parseDumpArgs(argv: string[], io: CommandIO, flags: ReadonlySet<string>): DumpArgs {
  const a: DumpArgs = { positional: [], runDir: resolve(io.cwd, defaultRunDir(io.env)), json: false, all: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v === '') throw new SupervError('SUPERV_ERR_BAD_VALUE', flag, 'it needs a value');
      return v;
    };
    if (!arg.startsWith('-') || arg === '-') { a.positional.push(arg); continue; }
    if (!flags.has(flag)) throw new SupervError('SUPERV_ERR_USAGE', `unknown option ${flag}; try --help`);
    switch (flag) {
      case '--dir': a.dir = resolve(io.cwd, value()); break;
      case '--run-dir': a.runDir = resolve(io.cwd, value()); break;
      case '--html': a.html = resolve(io.cwd, value()); break;
      case '--json': a.json = true; break;
      case '--all': a.all = true; break;
      case '--help': case '-h': a.help = true; break;
      default: break;
    }
  }
  return a;
}

/** The dump dir, and how it was chosen (shown when it holds nothing, so a wrong guess is visible). */
export async function resolveDumpDir(a: DumpArgs, name: string | undefined, io: CommandIO): Promise<{ dir: string; how: string }> {
  if (a.dir) return { dir: a.dir, how: '--dir' };
  if (name) {
    const s = await request(a.runDir, name, { cmd: 'status' }, 2000).then((x) => x as MasterStatus, () => undefined);
    if (s?.dumpDir) return { dir: resolve(io.cwd, s.dumpDir), how: `the dump dir of the running supervisor ${name}` };
  }
  if (io.env.SUPERV_DUMP_DIR) return { dir: resolve(io.cwd, io.env.SUPERV_DUMP_DIR), how: '$SUPERV_DUMP_DIR' };
  return { dir: resolve(io.cwd, 'superv-dumps'), how: 'the default ./superv-dumps' };
}

export async function requireDir(dir: string, how: string): Promise<void> {
  const st = await fs.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'dump dir', `${dir} (${how}) is not a directory; pass --dir DIR, or the NAME of a running supervisor`);
  }
}

const LIST_FLAGS = new Set(['--dir', '--run-dir', '--json', '--help', '-h']);
const SHOW_FLAGS = new Set(['--dir', '--run-dir', '--json', '--all', '--help', '-h']);

export const DUMPS_HELP = `Usage:
  superv dumps [NAME] [--dir DIR] [--json]                   one line per dump, oldest first
  superv dumps show FILE|latest [NAME] [--dir DIR] [--all] [--json]
                                                             one dump, explained (--all: locals of node internals too)
The dump dir is --dir, else the running supervisor NAME's, else $SUPERV_DUMP_DIR, else ./superv-dumps.
NAME also keeps only that supervisor's dumps. --json prints machine-readable output (show: the dump file itself).
`;

export async function runDumps(argv: string[], io: CommandIO = processIO()): Promise<number> {
  if (argv[0] === 'show') return show(argv.slice(1), io);
  const a = parseDumpArgs(argv, io, LIST_FLAGS);
  if (a.help) { io.out.write(DUMPS_HELP); return 0; }
  if (a.positional.length > 1) throw new SupervError('SUPERV_ERR_USAGE', 'superv dumps [NAME] [--dir DIR] [--json]');
  const name = a.positional[0];
  const { dir, how } = await resolveDumpDir(a, name, io);
  await requireDir(dir, how);
  const set = await loadDumps(dir, name);
  for (const p of set.problems) io.err.write(`superv: skipped ${p}\n`);
  if (a.json) {
    io.out.write(JSON.stringify(set.dumps.map(summarizeDump), null, 2) + '\n');
  } else if (set.dumps.length === 0) {
    io.out.write(`no dumps${name ? ` of ${name}` : ''} in ${dir} (${how})\n`);
  } else {
    io.out.write(renderDumpList(set.dumps, style(wantColor(io.out, io.env))));
  }
  return 0;
}

async function show(argv: string[], io: CommandIO): Promise<number> {
  const a = parseDumpArgs(argv, io, SHOW_FLAGS);
  if (a.help) { io.out.write(DUMPS_HELP); return 0; }
  const [target, name, ...extra] = a.positional;
  if (!target || extra.length) throw new SupervError('SUPERV_ERR_USAGE', 'superv dumps show FILE|latest [NAME] [--dir DIR] [--json] [--all]');
  const { dir, how } = await resolveDumpDir(a, name, io);
  if (target === 'latest') await requireDir(dir, how);
  const file = await resolveDumpTarget(target, dir, name).catch((e: Error) => {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'dump', e.message);
  });
  const d = await readDump(file).catch((e: Error) => {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'dump', `${file}: ${e.message}`);
  });
  if (a.json) {
    // The file as written: the dump format is the machine interface (see docs/dumps.md).
    io.out.write(await fs.readFile(file, 'utf8'));
    return 0;
  }
  io.out.write(renderDumpText(d, { style: style(wantColor(io.out, io.env)), read: fsSourceReader(), allLocals: a.all }));
  return 0;
}
