// `superv top [NAME] [--once]`: a live view of one supervisor, like `pm2 monit`, refreshed every second from
// the control socket's status and the dump dir. It takes the terminal (alternate screen, no cursor, raw keys)
// and gives it back as it found it whichever way it ends: q, Ctrl-C, SIGTERM, or an error. Without a terminal
// it refuses (a live view in a pipe or a log is noise); --once prints one snapshot anywhere.

import { resolve } from 'node:path';
import { request } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { listDumps } from '../dump/files';
import { SupervError } from '../errors';
import type { MasterStatus } from '../master/status';
import { pickName } from './control';
import { LAST_DUMPS, renderTop, requestRates } from './top-view';

const REFRESH_MS = 1000;
/** A poll that takes longer is shown as a problem; the view keeps its last known state meanwhile. */
const POLL_TIMEOUT_MS = 3000;

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME = '\x1b[H';
const CLEAR_LINE = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

interface TopArgs { name: string | undefined; once: boolean; runDir: string }

function parse(argv: string[]): TopArgs {
  const out: TopArgs = { name: undefined, once: false, runDir: resolve(defaultRunDir()) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--once') out.once = true;
    else if (a === '--run-dir' || a.startsWith('--run-dir=')) {
      const v = a === '--run-dir' ? argv[++i] : a.slice('--run-dir='.length);
      if (!v) throw new SupervError('SUPERV_ERR_BAD_VALUE', '--run-dir', 'it needs a value');
      out.runDir = resolve(v);
    } else if (a.startsWith('-')) throw new SupervError('SUPERV_ERR_USAGE', `unknown option ${a}`);
    else if (out.name === undefined) out.name = a;
    else throw new SupervError('SUPERV_ERR_USAGE', `superv top [NAME] [--once]: unexpected ${JSON.stringify(a)}`);
  }
  return out;
}

/** This supervisor's newest dumps, newest first (a missing or unreadable dir is simply none). */
async function lastDumps(s: MasterStatus): Promise<string[]> {
  const mine = `-${s.name.replace(/[^A-Za-z0-9_.-]/g, '_')}-w`;
  const all = await listDumps(s.dumpDir).catch(() => []);
  return all.map((d) => d.name).filter((n) => n.includes(mine)).slice(-LAST_DUMPS).reverse();
}

/** Polls the master; remembers the previous served counters for requests/s. */
class Sampler {
  private prev: { at: number; status: MasterStatus } | undefined;
  constructor(private readonly runDir: string, private readonly name: string) {}

  async sample(): Promise<{ status: MasterStatus; rates: Map<number, number>; dumps: string[] }> {
    const status = await request(this.runDir, this.name, { cmd: 'status' }, POLL_TIMEOUT_MS) as MasterStatus;
    const at = Date.now();
    const rates = this.prev ? requestRates(this.prev.status.workers, status.workers, (at - this.prev.at) / 1000) : new Map<number, number>();
    this.prev = { at, status };
    return { status, rates, dumps: await lastDumps(status) };
  }
}

export async function runTop(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (!args.once && (process.stdout.isTTY !== true || process.stdin.isTTY !== true)) {
    throw new SupervError('SUPERV_ERR_NOT_A_TTY', 'top',
      `${process.stdout.isTTY ? 'stdin' : 'stdout'} is not a TTY; use superv top --once for one snapshot, or superv status --json`);
  }
  const name = await pickName(args, args.name);
  const sampler = new Sampler(args.runDir, name);
  if (args.once) {
    // Two samples a second apart, so requests/s is measured, not guessed.
    await sampler.sample();
    await new Promise((r) => setTimeout(r, REFRESH_MS));
    const f = await sampler.sample();
    const width = process.stdout.isTTY ? process.stdout.columns : 80;
    process.stdout.write(renderTop({ ...f, now: Date.now() }, width, 1000).join('\n') + '\n');
    return 0;
  }
  // The first sample before the screen is taken: a master that is not running is a plain error.
  return live(sampler, await sampler.sample());
}

function live(sampler: Sampler, first: Awaited<ReturnType<Sampler['sample']>>): Promise<number> {
  const out = process.stdout;
  const stdin = process.stdin;
  let last = first;
  let problem: string | undefined;
  const draw = () => {
    const lines = renderTop({ ...last, problem, now: Date.now() }, out.columns, out.rows);
    out.write(HOME + lines.map((l) => l + CLEAR_LINE).join('\r\n') + CLEAR_BELOW);
  };
  return new Promise<number>((done) => {
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const end = (code: number) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      out.off('resize', draw);
      stdin.setRawMode(false);
      stdin.pause();
      out.write(LEAVE);
      done(code);
    };
    const poll = async () => {
      try {
        last = await sampler.sample();
        problem = undefined;
      } catch (err) {
        problem = (err as Error).message;
      }
      if (ended) return;
      draw();
      timer = setTimeout(() => void poll(), REFRESH_MS);
    };
    out.write(ENTER);
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    // q quits; Ctrl-C arrives as a byte in raw mode, not as SIGINT.
    stdin.on('data', (key: string) => { if (key === 'q' || key === 'Q' || key.includes('\x03')) end(0); });
    stdin.resume();
    out.on('resize', draw);
    process.once('SIGTERM', () => end(0));
    process.once('SIGHUP', () => end(0));
    draw();
    timer = setTimeout(() => void poll(), REFRESH_MS);
  });
}
