// `superv logs [NAME] [--lines N] [-f] [--worker N] [--json]`: a daemonised supervisor's log, master and worker
// lines each prefixed with its source, pretty on a terminal and raw JSON with --json. The master names its log
// file over the control socket (a foreground master has none: its log is its stdout); --file reads one
// directly, running master or not.

import { openSync, fstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { request } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { SupervError } from '../errors';
import type { MasterStatus } from '../master/status';
import { pickName } from './control';
import { formatRecord, keeps, parseRecord } from './log-records';
import { Follower, lastLines } from './log-tail';

/** pm2's default: enough to see what just happened, short enough for one screen. */
const DEFAULT_LINES = 15;
/** How often -f looks for new lines (and for a rotated or reopened file). */
const FOLLOW_POLL_MS = 200;

interface LogsArgs { name: string | undefined; lines: number; follow: boolean; worker: number | undefined; json: boolean; file: string | undefined; runDir: string }

function count(flag: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new SupervError('SUPERV_ERR_BAD_VALUE', flag, `${JSON.stringify(v ?? '')}: expected a whole number`);
  return Number(v);
}

export function parseLogsArgs(argv: string[]): LogsArgs {
  const out: LogsArgs = { name: undefined, lines: DEFAULT_LINES, follow: false, worker: undefined, json: false, file: undefined, runDir: resolve(defaultRunDir()) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    if (flag === '-f' || flag === '--follow') out.follow = true;
    else if (flag === '--json') out.json = true;
    else if (flag === '--lines' || flag === '-n') out.lines = count('--lines', value());
    else if (flag === '--worker') out.worker = count('--worker', value());
    else if (flag === '--file') { const v = value(); if (!v) throw new SupervError('SUPERV_ERR_BAD_VALUE', '--file', 'it needs a value'); out.file = resolve(v); }
    else if (flag === '--run-dir') { const v = value(); if (!v) throw new SupervError('SUPERV_ERR_BAD_VALUE', '--run-dir', 'it needs a value'); out.runDir = resolve(v); }
    else if (a.startsWith('-')) throw new SupervError('SUPERV_ERR_USAGE', `unknown option ${a}`);
    else if (out.name === undefined) out.name = a;
    else throw new SupervError('SUPERV_ERR_USAGE', `superv logs [NAME] [--lines N] [-f] [--worker N] [--json]: unexpected ${JSON.stringify(a)}`);
  }
  return out;
}

async function logFileOf(args: LogsArgs): Promise<string> {
  if (args.file) return args.file;
  const name = await pickName(args, args.name);
  const s = await request(args.runDir, name, { cmd: 'status' }) as MasterStatus;
  if (!s.logFile) {
    throw new SupervError('SUPERV_ERR_NO_LOG_FILE', name,
      'its log is its stdout and stderr (journalctl -u UNIT under systemd, kubectl logs in Kubernetes); start it with --daemon for a log file, or pass --file FILE');
  }
  return s.logFile;
}

export async function runLogs(argv: string[]): Promise<number> {
  const args = parseLogsArgs(argv);
  const path = await logFileOf(args);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'log file', `${path}: ${(err as Error).message}`);
  }
  const color = !args.json && process.stdout.isTTY === true;
  // A reader that went away (`superv logs | head`) ends us quietly.
  process.stdout.on('error', () => process.exit(0));
  const keep = (line: string) => keeps(parseRecord(line), args.worker);
  const show = (line: string) => { process.stdout.write((args.json ? line : formatRecord(parseRecord(line), color)) + '\n'); };
  const size = fstatSync(fd).size;
  for (const line of lastLines(path, fd, size, args.lines, keep)) show(line);
  if (!args.follow) return 0;
  const follower = new Follower(path, fd, size, (line) => { if (keep(line)) show(line); });
  return new Promise<number>((done) => {
    const timer = setInterval(() => follower.poll(), FOLLOW_POLL_MS);
    const stop = () => { clearInterval(timer); follower.poll(); follower.close(); done(0); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
