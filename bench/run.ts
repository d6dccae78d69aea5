// `npm run bench`: superv side by side with a bare node:cluster primary and pm2 cluster mode, in one run.
// Each comparison alternates rounds on this machine and reports medians and ratios; the table is printed
// and written (with date, Node version and core count) into docs/benchmarks.md between markers, under a
// hand-written intro the script keeps.
//
//   npm run bench                      full run (~11 min on 2 cores), writes docs/benchmarks.md
//   npm run bench -- --quick           ~3-minute smoke run; prints, does not write (add --write to write)
//   npm run bench -- --only hello,db   some figures only (start, hello, cpu, pprof, reload, stall, capture, capture-size,
//                                      idle, inflight, db, query, locks, context, throws, instructions)
//   npm run bench -- --quick --only cpu,pprof   CPU sampling's cost on hello world and Express, and superv's
//                                      sampling against @datadog/pprof (cost, attribution error, memory)
//   npm run bench -- --only db --drivers pg,mariadb   the DB figure for some drivers only (pg, postgres, mysql2, mariadb)
//   PATH=/path/to/node24/bin:$PATH npm run bench   the same on another Node: each major has its own table in the doc
//   npm run bench -- --pg-on "ARGS" --pg-off "ARGS"   superv arguments that turn DB instrumentation on / off

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { captureFigure } from './figures/capture';
import { captureSizeFigure } from './figures/capture-size';
import { contextFigure } from './figures/context';
import { helloFigure } from './figures/hello';
import { cpuFigure } from './figures/cpu';
import { pprofFigure } from './figures/pprof';
import { idleFigure } from './figures/idle';
import { inflightFigure } from './figures/inflight';
import { instructionsFigure } from './figures/instructions';
import { DB_DRIVERS, dbFigure, findSwitch, type Driver } from './figures/db';
import { locksFigure } from './figures/locks';
import { queryFigure } from './figures/query';
import { reloadFigure } from './figures/reload';
import { stallFigure } from './figures/stall';
import { throwsFigure } from './figures/throws';
import { startFigure } from './figures/start';
import { FULL, QUICK, type Plan } from './lib/plan';
import { killOwned } from './lib/proc';
import { failedFigure, renderGenerated, renderTable, writeDoc, type FigureResult } from './lib/report';
import { REPO } from './lib/systems';

const FIGURES = ['start', 'hello', 'cpu', 'pprof', 'reload', 'stall', 'capture', 'capture-size', 'idle', 'inflight', 'db', 'query', 'locks', 'context', 'throws', 'instructions'] as const;
type FigureName = (typeof FIGURES)[number];

const USAGE = `usage: npm run bench -- [--quick] [--only ${FIGURES.join(',')}] [--write | --no-write] [--out FILE]
                          [--pg-on "SUPERV ARGS" --pg-off "SUPERV ARGS"] [--drivers pg,postgres,mysql2,mariadb]`;

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
      drivers: { type: 'string' },
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
    drivers: values.drivers?.split(',').map((s) => s.trim()).filter(Boolean),
  };
}

async function main(): Promise<number> {
  const o = options();
  if (o.help) { process.stdout.write(USAGE + '\n'); return 0; }
  const started = Date.now();
  // Every figure runs superv, its workers and the baselines on this node (process.execPath): to bench another
  // version, put it first on PATH (`PATH=/path/to/node24/bin:$PATH npm run bench`).
  process.stdout.write(`bench: Node ${process.version} (${process.execPath}), ${o.plan.mode} run\n`);
  const run: Record<FigureName, () => Promise<FigureResult>> = {
    start: () => startFigure(o.plan),
    hello: () => helloFigure(o.plan),
    cpu: () => cpuFigure(o.plan),
    pprof: () => pprofFigure(o.plan),
    reload: () => reloadFigure(o.plan),
    stall: () => stallFigure(o.plan),
    capture: () => captureFigure(o.plan),
    'capture-size': () => captureSizeFigure(o.plan),
    idle: () => idleFigure(o.plan),
    inflight: () => inflightFigure(o.plan),
    db: async () => {
      // One row per driver, each measured on its own pair of fresh systems.
      const parts: FigureResult[] = [];
      for (const d of (o.drivers ?? DB_DRIVERS) as Driver[]) parts.push(await dbFigure(o.plan, findSwitch(o.pgOn, o.pgOff), d));
      return { rows: parts.flatMap((p) => p.rows), details: parts.flatMap((p) => p.details), notes: parts.flatMap((p) => p.notes) };
    },
    query: () => queryFigure(o.plan),
    locks: () => locksFigure(o.plan),
    context: () => contextFigure(o.plan),
    instructions: () => instructionsFigure(o.plan),
    throws: () => throwsFigure(o.plan),
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
      results.push(failedFigure(name, err));
    }
    process.stderr.write(`${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
  const info = { date: new Date(), mode: o.plan.mode, elapsedS: (Date.now() - started) / 1000 };
  process.stdout.write('\n' + renderTable(results.flatMap((r) => r.rows)));
  const notes = results.flatMap((r) => r.notes);
  if (notes.length > 0) process.stdout.write('\n' + notes.map((n) => `- ${n}`).join('\n') + '\n');
  if (o.write) {
    writeDoc(o.out, renderGenerated(info, results), `node${process.versions.node.split('.')[0]}`);
    process.stdout.write(`\nwritten: ${o.out}\n`);
  } else {
    // Nothing measured is lost when nothing is written: the rounds go to the terminal.
    const details = results.flatMap((r) => r.details);
    if (details.length > 0) process.stdout.write('\n' + details.join('\n\n') + '\n');
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
