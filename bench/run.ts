// `npm run bench`: superv side by side with a bare node:cluster primary and pm2 cluster mode, in one run.
// Each comparison alternates rounds on this machine and reports medians and ratios; the table is printed
// and written (with date, Node version and core count) into docs/benchmarks.md between markers, under a
// hand-written intro the script keeps.
//
//   npm run bench                      full run (~11 min on 2 cores), writes docs/benchmarks.md
//   npm run bench -- --quick           ~3-minute smoke run; prints, does not write (add --write to write)
//   npm run bench -- --only hello,pg   some figures only (start, hello, reload, stall, capture, idle, pg, instructions)
//   npm run bench -- --pg-on "ARGS" --pg-off "ARGS"   superv arguments that turn DB instrumentation on / off

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { captureFigure } from './figures/capture';
import { helloFigure } from './figures/hello';
import { idleFigure } from './figures/idle';
import { instructionsFigure } from './figures/instructions';
import { findSwitch, pgFigure } from './figures/pg';
import { reloadFigure } from './figures/reload';
import { stallFigure } from './figures/stall';
import { startFigure } from './figures/start';
import { FULL, QUICK, type Plan } from './lib/plan';
import { killOwned } from './lib/proc';
import { renderGenerated, renderTable, writeDoc, type FigureResult } from './lib/report';
import { REPO } from './lib/systems';

const FIGURES = ['start', 'hello', 'reload', 'stall', 'capture', 'idle', 'pg', 'instructions'] as const;
type FigureName = (typeof FIGURES)[number];

const USAGE = `usage: npm run bench -- [--quick] [--only ${FIGURES.join(',')}] [--write | --no-write] [--out FILE]
                          [--pg-on "SUPERV ARGS" --pg-off "SUPERV ARGS"]`;

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      write: { type: 'boolean' },
      'no-write': { type: 'boolean', default: false },
      out: { type: 'string' },
      'pg-on': { type: 'string' },
      'pg-off': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean) ?? [...FIGURES];
  const unknown = only.filter((f) => !(FIGURES as readonly string[]).includes(f));
  if (unknown.length > 0) throw new Error(`unknown figure(s): ${unknown.join(', ')}\n${USAGE}`);
  const plan: Plan = values.quick ? QUICK : FULL;
  return {
    plan,
    help: values.help,
    only: only as FigureName[],
    // A quick run's numbers are too short-lived to publish over a full run's: it writes only when asked.
    write: values['no-write'] ? false : values.write ?? !values.quick,
    out: values.out ?? join(REPO, 'docs', 'benchmarks.md'),
    pgOn: values['pg-on'],
    pgOff: values['pg-off'],
  };
}

function failed(name: FigureName, err: unknown): FigureResult {
  const why = err instanceof Error ? err.message : String(err);
  return {
    rows: [{ figure: name, superv: `error: ${why.split('\n')[0]}`, bare: '—', pm2: '—', compare: '—', target: '—', result: 'n/a' }],
    details: [], notes: [`${name}: the harness failed: ${why}`],
  };
}

async function main(): Promise<number> {
  const o = options();
  if (o.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const started = Date.now();
  const run: Record<FigureName, () => Promise<FigureResult>> = {
    start: () => startFigure(o.plan),
    hello: () => helloFigure(o.plan),
    reload: () => reloadFigure(o.plan),
    stall: () => stallFigure(o.plan),
    capture: () => captureFigure(o.plan),
    idle: () => idleFigure(o.plan),
    pg: () => pgFigure(o.plan, findSwitch(o.pgOn, o.pgOff)),
    instructions: () => instructionsFigure(o.plan),
  };
  const results: FigureResult[] = [];
  let errors = 0;
  for (const name of o.only) {
    const t = Date.now();
    process.stderr.write(`bench: ${name}… `);
    try {
      results.push(await run[name]());
    } catch (err) {
      errors++;
      results.push(failed(name, err));
    }
    process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
  const info = { date: new Date(), mode: o.plan.mode, elapsedS: (Date.now() - started) / 1000 };
  process.stdout.write('\n' + renderTable(results.flatMap((r) => r.rows)));
  const notes = results.flatMap((r) => r.notes);
  if (notes.length > 0) process.stdout.write('\n' + notes.map((n) => `- ${n}`).join('\n') + '\n');
  if (o.write) {
    writeDoc(o.out, renderGenerated(info, results));
    process.stdout.write(`\nwritten: ${o.out}\n`);
  } else {
    process.stdout.write(`\nnot written (${o.plan.mode} run); pass --write to write ${o.out}\n`);
  }
  return errors > 0 ? 1 : 0;
}

process.on('exit', killOwned);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => { killOwned(); process.exit(130); });
}
main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 2;
});
