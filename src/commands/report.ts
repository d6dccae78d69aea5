// `superv report [NAME] [--dir DIR] [--html FILE] [--json]`: per route, how many requests, how much of the
// time, p50/p95/p99, and how many were slow or killed, with the frames the dumps caught them in.

import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SupervError } from '../errors';
import { buildReport, renderReportText, reportJson } from '../forensics/report';
import { renderReportHtml } from '../forensics/report-html';
import { fsSourceReader } from '../forensics/view/facts';
import { style, wantColor } from '../forensics/view/format';
import { loadDumps } from '../forensics/view/load';
import { readRouteStats } from '../master/route-stats';
import { parseDumpArgs, processIO, requireDir, resolveDumpDir, type CommandIO } from './dumps';

const FLAGS = new Set(['--dir', '--run-dir', '--html', '--json', '--help', '-h']);

export const REPORT_HELP = `Usage:
  superv report [NAME] [--dir DIR] [--html FILE] [--json]
Routes ranked by the time they consume: requests, p50/p95/p99 (estimated from histograms), max, slow and
killed requests, and where the dumps caught them. --html FILE writes a self-contained page (0600) with a
latency chart per route, a timeline of kills and slow requests, and every dump.
The dump dir is --dir, else the running supervisor NAME's, else $SUPERV_DUMP_DIR, else ./superv-dumps.
`;

// The page embeds dumps (redacted, but still request URLs and locals): as private as the dumps themselves.
async function writePrivate(file: string, text: string): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await fs.writeFile(temp, text, { mode: 0o600, flag: 'wx' });
    await fs.rename(temp, file);
  } catch (e) {
    await fs.unlink(temp).catch(() => undefined);
    throw new SupervError('SUPERV_ERR_BAD_VALUE', '--html', `cannot write ${file}: ${(e as Error).message}`);
  }
}

export async function runReport(argv: string[], io: CommandIO = processIO()): Promise<number> {
  const a = parseDumpArgs(argv, io, FLAGS);
  if (a.help) { io.out.write(REPORT_HELP); return 0; }
  if (a.positional.length > 1) throw new SupervError('SUPERV_ERR_USAGE', 'superv report [NAME] [--dir DIR] [--html FILE] [--json]');
  const name = a.positional[0];
  const { dir, how } = await resolveDumpDir(a, name, io);
  await requireDir(dir, how);
  const [set, stats] = await Promise.all([loadDumps(dir, name), readRouteStats(dir, name)]);
  for (const p of set.problems) io.err.write(`superv: skipped ${p}\n`);
  const report = buildReport({ dir, name, stats, dumps: set.dumps });
  io.out.write(a.json ? JSON.stringify(reportJson(report), null, 2) + '\n' : renderReportText(report, style(wantColor(io.out, io.env))));
  if (a.html) {
    await writePrivate(a.html, renderReportHtml(report, { read: fsSourceReader() }));
    io.err.write(`superv: wrote ${a.html}\n`);
  }
  return 0;
}
