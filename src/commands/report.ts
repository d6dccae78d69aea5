// `superv report [NAME] [--dir DIR] [--html FILE] [--json]`: per route, how many requests, how much of the
// time, p50/p95/p99, and how many were slow or killed, with the frames the dumps caught them in.

import { SupervError } from '../errors';
import { buildReport, renderReportText, reportJson } from '../reader/report';
import { renderReportHtml } from '../reader/report-html';
import { fsSourceReader } from '../reader/facts';
import { style, wantColor } from '../reader/format';
import { readRouteStats } from '../master/route-stats';
import { readCpuStats } from '../master/cpu-stats';
import type { CpuTotals } from '../dump/cpu';
import { request } from '../control/client';
import { buildCpuReport, cpuJson, renderCpuText } from '../reader/report-cpu';
import { writeFileAtomic } from '../util/files';
import { loadDumpsWithWarnings, parseDumpArgs, processIO, resolveDumpDirs, type CommandIO } from './dumps';

const FLAGS = new Set(['--dir', '--run-dir', '--html', '--json', '--trace-url']);

// The page embeds dumps (redacted, but still request URLs and locals): as private as the dumps themselves.
async function writePrivate(file: string, text: string): Promise<void> {
  try {
    await writeFileAtomic(file, text, 0o600);
  } catch (e) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', '--html', `cannot write ${file}: ${(e as Error).message}`);
  }
}

/**
 * The CPU totals: live from the running master NAME when there is one (and no --dir), else the CPU stats files
 * the masters wrote into the dump dirs.
 */
async function loadCpu(live: string | undefined, runDir: string, dirs: readonly string[], name: string | undefined, io: CommandIO): Promise<{ totals: CpuTotals; source: string } | undefined> {
  if (live !== undefined) {
    const t = await request(runDir, live, { cmd: 'cpu' }, 5000).then((x) => x as CpuTotals | null, () => null);
    if (t) return { totals: t, source: `live from the master of ${live}` };
  }
  const files = await readCpuStats(dirs, name);
  for (const p of files.problems) io.err.write(`superv: skipped ${p}\n`);
  return files.totals && { totals: files.totals, source: files.files.join(', ') };
}

export async function runReport(argv: string[], io: CommandIO = processIO()): Promise<number> {
  const a = parseDumpArgs(argv, io, FLAGS);
  if (a.positional.length > 1) throw new SupervError('SUPERV_ERR_USAGE', 'superv report [NAME] [--dir DIR]... [--html FILE] [--json] [--trace-url URL]');
  const name = a.positional[0];
  const d = await resolveDumpDirs(a, name, io);
  const [set, stats] = await Promise.all([loadDumpsWithWarnings(d, name, io), readRouteStats(d.dirs, name)]);
  const report = buildReport({ dir: d.dirs.join(', '), name, stats, dumps: set.dumps, traceUrl: a.traceUrl });
  const cpu = await loadCpu(a.dirs.length > 0 ? undefined : name, a.runDir, d.dirs, name, io);
  const cpuReport = cpu && buildCpuReport(cpu.totals, cpu.source, stats.routes);
  const st = style(wantColor(io.out, io.env));
  io.out.write(a.json ? JSON.stringify({ ...(reportJson(report) as object), cpu: cpuReport ? cpuJson(cpuReport) : null }, null, 2) + '\n'
    : renderReportText(report, st) + (cpuReport ? renderCpuText(cpuReport, st) : ''));
  if (a.html) {
    await writePrivate(a.html, renderReportHtml(report, { read: fsSourceReader(), traceUrl: a.traceUrl }, cpuReport));
    io.err.write(`superv: wrote ${a.html}\n`);
  }
  return 0;
}
