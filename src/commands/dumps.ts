// `superv dumps [NAME]` lists the dumps of a dump dir; `superv dumps show FILE|latest` explains one.
// Which dir: --dir (several times, and globs: the dump dirs of many hosts, merged), else the dump dir of the
// running supervisor NAME (asked over its control socket), else $SUPERV_DUMP_DIR, else ./superv-dumps (the
// dump_dir default). NAME also filters on the dump's supervisor.

import { promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import { request } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { SupervError } from '../errors';
import { renderDumpList, renderDumpText, summarizeDump } from '../reader/dump-text';
import { groupDeaths, renderDeathGroups } from '../reader/deaths';
import { fsSourceReader } from '../reader/facts';
import { style, wantColor } from '../reader/format';
import { loadDumps, readDump, resolveDumpTarget, type DumpSet } from '../reader/load';
import { expandDirGlob, isGlob } from '../util/dir-glob';
import { traceUrlProblem } from '../util/trace-url';
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
  /** Each --dir as given (resolved against cwd), globs not yet expanded. */
  dirs: string[];
  /** --trace-url: a link template that wins over the one each dump was written with. */
  traceUrl?: string;
  runDir: string;
  json: boolean;
  all: boolean;
  html?: string;
}

/** Parses the flags the dump commands share; `flags` lists the ones this command accepts. */
export function parseDumpArgs(argv: string[], io: CommandIO, flags: ReadonlySet<string>): DumpArgs {
  const a: DumpArgs = { positional: [], dirs: [], runDir: resolve(io.cwd, defaultRunDir(io.env)), json: false, all: false };
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
      case '--dir': a.dirs.push(resolve(io.cwd, value())); break;
      case '--trace-url': {
        const t = value();
        const why = traceUrlProblem(t);
        if (why !== undefined) throw new SupervError('SUPERV_ERR_BAD_VALUE', '--trace-url', `${JSON.stringify(t)}: ${why}`);
        a.traceUrl = t;
        break;
      }
      case '--run-dir': a.runDir = resolve(io.cwd, value()); break;
      case '--html': a.html = resolve(io.cwd, value()); break;
      case '--json': a.json = true; break;
      case '--all': a.all = true; break;
      default: break;
    }
  }
  return a;
}

/** The dump dirs, and how they were chosen (shown when they hold nothing, so a wrong guess is visible). */
export interface DumpDirs {
  dirs: string[];
  how: string;
  /** One sentence per --dir that named nothing readable: printed as a warning, the others are still read. */
  warnings: string[];
}

/**
 * Every --dir, globs expanded; a missing or unreadable one becomes a warning naming it. With no --dir, the one
 * dir chosen as resolveDumpDir says; when none of them can be read, an error naming them (nothing to show).
 */
export async function resolveDumpDirs(a: DumpArgs, name: string | undefined, io: CommandIO): Promise<DumpDirs> {
  if (a.dirs.length === 0) {
    const { dir, how } = await resolveDumpDir(a, name, io);
    await requireDir(dir, how);
    return { dirs: [dir], how, warnings: [] };
  }
  const dirs: string[] = [];
  const warnings: string[] = [];
  for (const given of a.dirs) {
    const found = isGlob(given) ? await expandDirGlob(given, io.cwd) : [given];
    if (found.length === 0) warnings.push(`--dir ${given}: no directory matches it`);
    for (const dir of found) {
      const why = await unreadable(dir);
      if (why !== undefined) warnings.push(`--dir ${dir}: ${why}`);
      else if (!dirs.includes(dir)) dirs.push(dir);
    }
  }
  if (dirs.length === 0) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'dump dir', `none of the --dir given can be read: ${warnings.map((w) => w.replace(/^--dir /, '')).join('; ')}`);
  }
  return { dirs, how: dirs.length > 1 ? `${dirs.length} --dir` : '--dir', warnings };
}

/** Why `dir` cannot be listed, or undefined when it can. */
async function unreadable(dir: string): Promise<string | undefined> {
  const st = await fs.stat(dir).catch((e: NodeJS.ErrnoException) => e);
  if (st instanceof Error) return st.code === 'ENOENT' ? 'no such directory' : `cannot read it (${st.code ?? st.message})`;
  if (!st.isDirectory()) return 'not a directory';
  return fs.readdir(dir).then(() => undefined, (e: NodeJS.ErrnoException) => `cannot read it (${e.code ?? e.message})`);
}

/** The dumps of every dir, warnings and skipped files said on stderr. */
export async function loadDumpsWithWarnings(d: DumpDirs, name: string | undefined, io: CommandIO): Promise<DumpSet> {
  for (const w of d.warnings) io.err.write(`superv: warning: ${w}; reading the others\n`);
  const set = await loadDumps(d.dirs, name);
  for (const p of set.problems) io.err.write(`superv: skipped ${p}\n`);
  return set;
}

/** The dump dir when no --dir is given, and how it was chosen. */
export async function resolveDumpDir(a: DumpArgs, name: string | undefined, io: CommandIO): Promise<{ dir: string; how: string }> {
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

// --help never reaches here: cli.ts answers it from the command table (table.ts).
const LIST_FLAGS = new Set(['--dir', '--run-dir', '--json']);
const SHOW_FLAGS = new Set(['--dir', '--run-dir', '--json', '--all', '--trace-url']);

export async function runDumps(argv: string[], io: CommandIO = processIO()): Promise<number> {
  if (argv[0] === 'show') return show(argv.slice(1), io);
  const a = parseDumpArgs(argv, io, LIST_FLAGS);
  if (a.positional.length > 1) throw new SupervError('SUPERV_ERR_USAGE', 'superv dumps [NAME] [--dir DIR] [--json]');
  const name = a.positional[0];
  const dirs = await resolveDumpDirs(a, name, io);
  const set = await loadDumpsWithWarnings(dirs, name, io);
  if (a.json) {
    io.out.write(JSON.stringify(set.dumps.map(summarizeDump), null, 2) + '\n');
  } else if (set.dumps.length === 0) {
    io.out.write(`no dumps${name ? ` of ${name}` : ''} in ${dirs.dirs.join(', ')} (${dirs.how})\n`);
  } else {
    const s = style(wantColor(io.out, io.env));
    io.out.write(renderDumpList(set.dumps, s));
    const deaths = renderDeathGroups(groupDeaths(set.dumps), s);
    if (deaths) io.out.write(`\n${deaths}`);
  }
  return 0;
}

async function show(argv: string[], io: CommandIO): Promise<number> {
  const a = parseDumpArgs(argv, io, SHOW_FLAGS);
  const [target, name, ...extra] = a.positional;
  if (!target || extra.length) throw new SupervError('SUPERV_ERR_USAGE', 'superv dumps show FILE|latest [NAME] [--dir DIR]... [--json] [--all] [--trace-url URL]');
  let dirs: string[];
  if (target === 'latest' || a.dirs.length > 0) {
    const d = await resolveDumpDirs(a, name, io);
    for (const w of d.warnings) io.err.write(`superv: warning: ${w}; reading the others\n`);
    dirs = d.dirs;
  } else {
    dirs = [(await resolveDumpDir(a, name, io)).dir];
  }
  const file = await resolveDumpTarget(target, dirs, name).catch((e: Error) => {
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
  io.out.write(renderDumpText(d, { style: style(wantColor(io.out, io.env)), read: fsSourceReader(), allLocals: a.all, traceUrl: a.traceUrl }));
  return 0;
}
