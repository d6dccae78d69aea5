// Per-query CPU cost of the DB instrumentation, in one process (bench/lib/query-cost.ts, run as a child so
// the bench's own process never loads the instrumentation): one connection, wrappers switched on and off
// between short batches, CPU µs per query as medians. Complements the `pg` figure (whole requests through
// superv): this one isolates the wrappers from HTTP and AsyncLocalStorage.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Plan } from '../lib/plan';
import type { FigureResult, Row } from '../lib/report';
import { REPO } from '../lib/systems';

type Modes = Record<'off' | 'on' | 'on, exact call sites' | 'on, no call sites', number>;
interface Out { pg: Modes; postgres: Modes; mysql2: Modes; mariadb: Modes; statementNs: Record<string, number> }

/** The per-query wrapper cost a CPU-bound route can absorb before its ratio drops below the 0.98 target. */
const TARGET_US = 2;

function row(driver: string, m: Modes): Row {
  const extra = m.on - m.off;
  return {
    figure: `${driver}: CPU per query, in-process (wrappers on − off)`,
    superv: `${m.on.toFixed(1)} µs`, bare: `${m.off.toFixed(1)} µs`, pm2: '—',
    compare: `${extra >= 0 ? '+' : ''}${extra.toFixed(1)} µs`, target: `≤ +${TARGET_US} µs`,
    result: extra <= TARGET_US ? 'pass' : 'MISS',
  };
}

export async function queryFigure(_plan: Plan): Promise<FigureResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(REPO, 'dist', 'bench', 'lib', 'query-cost.js')], { timeout: 300_000 });
  const o = JSON.parse(stdout.trim().split('\n').pop()!) as Out;
  const s = o.statementNs;
  const ns = (k: string): string => `${(s[k] ?? NaN).toFixed(0)} ns`;
  return {
    rows: [row('pg', o.pg), row('postgres.js', o.postgres), row('mysql2', o.mysql2), row('mariadb', o.mariadb)],
    details: [
      `pg: exact call sites ${o.pg['on, exact call sites'].toFixed(1)} µs, no call sites ${o.pg['on, no call sites'].toFixed(1)} µs per query`,
      `mysql2: exact call sites ${o.mysql2['on, exact call sites'].toFixed(1)} µs, no call sites ${o.mysql2['on, no call sites'].toFixed(1)} µs per query`,
      `one Statement 20 frames below the app: none ${ns('none')}, cached call site (default) ${ns('cached')}, ` +
        `exact 1 frame ${ns('exact1')}, 4 frames ${ns('exact4')}, 10 frames ${ns('exact10')}`,
    ],
    notes: [],
  };
}
