// What the DB instrumentation costs per query, in one process: run by bench/figures/query.ts as a child
// (`node dist/bench/lib/query-cost.js`), it prints one JSON line of medians. It was a test once; a shared,
// noisy machine cannot judge microseconds, so the numbers live in the benchmark and the tests check behaviour.
//
// In one process, on one connection, the drivers' query methods are switched between the wrappers and
// the originals (patch.ts keeps them) between short batches. pg's ReadyForQuery wrapper, bound at
// connect, stays on in every mode: for an untracked query it is a property read and a return. The cost is CPU time per query
// (process.cpuUsage), the meaningful number for a CPU-bound server.

import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { installInstrumentation } from '../../src/worker/instrument';
import { originalOf } from '../../src/worker/instrument/patch';
import { newStatement } from '../../src/worker/instrument/state';

installInstrumentation({ recordValues: false });
const pg = require('pg') as typeof import('pg');
const mysql = require('mysql2/promise') as typeof import('mysql2/promise');
const mysqlCore = require('mysql2') as typeof import('mysql2');
const mariadb = require('mariadb') as typeof import('mariadb');
const postgres = require('postgres') as typeof import('postgres');

const BATCH = 100;
const BATCHES = 30;

type Mode = 'off' | 'on' | 'on, exact call sites' | 'on, no call sites';
const MODES: Mode[] = ['off', 'on', 'on, exact call sites', 'on, no call sites'];

function switcher(proto: object, names: string[]): (mode: Mode) => void {
  const p = proto as Record<string, unknown>;
  const wrapped = names.map((n) => p[n]);
  for (const w of wrapped) assert.notEqual(originalOf(w), w, 'the method is instrumented');
  return (mode) => {
    names.forEach((n, i) => { p[n] = mode === 'off' ? originalOf(wrapped[i]) : wrapped[i]; });
    installInstrumentation({
      recordValues: false,
      callSiteFrames: mode === 'on, no call sites' ? 0 : undefined,
      callSiteCache: mode !== 'on, exact call sites',
    });
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

interface Session { one(): Promise<unknown>; close(): Promise<void> }

/**
 * One connection, modes switched between short batches, so that the machine's load drifting over the run
 * (and any difference between connections) hits every mode alike. CPU µs per query, median over batches.
 */
export type QueryCost = Record<Mode, number>;

async function measure( setMode: (m: Mode) => void, open: () => Promise<Session>): Promise<QueryCost> {
  const samples: Record<Mode, number[]> = { off: [], on: [], 'on, exact call sites': [], 'on, no call sites': [] };
  setMode('on');
  const s = await open();
  try {
    for (let i = 0; i < 300; i++) await s.one();
    for (let b = 0; b < BATCHES; b++) {
      for (const mode of MODES) {
        setMode(mode);
        const c0 = process.cpuUsage();
        for (let i = 0; i < BATCH; i++) await s.one();
        const c = process.cpuUsage(c0);
        samples[mode].push((c.user + c.system) / BATCH);
      }
    }
  } finally {
    setMode('on');
    await s.close();
  }
  return Object.fromEntries(MODES.map((k) => [k, median(samples[k])])) as QueryCost;
}

/** pg, a one-row SELECT on one client. */
function pgCost(): Promise<QueryCost> {
  const setMode = switcher(pg.Client.prototype, ['query']);
  return measure(setMode, async () => {
    const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });
    await c.connect();
    return { one: () => c.query('SELECT 1 AS superv_overhead'), close: () => c.end() };
  });
}

/** mysql2's promise API, a one-row SELECT on one connection. */
function mysql2Cost(): Promise<QueryCost> {
  let owner: object | null = mysqlCore.Connection.prototype;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, 'query')) owner = Object.getPrototypeOf(owner) as object | null;
  assert.ok(owner);
  const setMode = switcher(owner, ['query', 'execute']);
  return measure(setMode, async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test' });
    return { one: () => c.query('SELECT 1 AS superv_overhead'), close: () => c.end() };
  });
}

/** The mariadb connector's promise API, a one-row SELECT. */
async function mariadbCost(): Promise<QueryCost> {
  // The connector's classes are not exported: its Connection prototype is found from a pooled connection.
  const pool = mariadb.createPool({ host: '127.0.0.1', user: 'root', database: 'test', connectionLimit: 1 });
  const acquired = new Promise<object>((resolve) => pool.on('acquire', (c: object) => resolve(c)));
  const conn = await pool.getConnection();
  let owner: object | null = Object.getPrototypeOf(await acquired) as object;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, 'query')) owner = Object.getPrototypeOf(owner) as object | null;
  assert.ok(owner);
  const setMode = switcher(owner, ['query']);
  return measure(setMode, async () => ({
    one: () => conn.query('SELECT 1 AS superv_overhead'),
    close: async () => { await conn.release(); await pool.end(); },
  }));
}

/** postgres.js, a one-row SELECT. */
async function postgresCost(): Promise<QueryCost> {
  // postgres.js is patched where its files load, not switchable after: 'off' is a copy of its CommonJS build
  // under a path superv does not instrument, in the same process, on a connection of its own.
  const copy = join(__dirname, 'postgres-uninstrumented');
  cpSync(join(require.resolve('postgres'), '..', '..'), join(copy, 'cjs'), { recursive: true });
  const bare = require(join(copy, 'cjs', 'src', 'index.js')) as typeof postgres;
  const opts = { host: '127.0.0.1', user: 'postgres', database: 'test', max: 1 };
  const on = postgres(opts);
  const off = bare(opts);
  let mode: Mode = 'on';
  const setMode = (m: Mode): void => {
    mode = m;
    installInstrumentation({ recordValues: false, callSiteFrames: m === 'on, no call sites' ? 0 : undefined, callSiteCache: m !== 'on, exact call sites' });
  };
  return measure(setMode, async () => ({
    one: () => (mode === 'off' ? off : on)`SELECT 1 AS superv_overhead`.execute(),
    close: async () => { await on.end(); await off.end(); },
  }));
}

/** One Statement, 20 frames below the app: ns for no call site, the cached one, exact captures of 1/4/10 frames. */
function statementCost(): Record<string, number> {
  function deep(n: number, fn: () => void): void {
    if (n === 0) fn();
    else deep(n - 1, fn);
  }
  const N = 20000;
  const SQL = 'SELECT balance FROM accounts WHERE id = $1';
  const per = (frames: number, cache: boolean): number => {
    installInstrumentation({ recordValues: false, callSiteFrames: frames, callSiteCache: cache });
    let keep: unknown;
    const issue = function issue(): void { keep = newStatement(SQL, undefined, issue); };
    for (let i = 0; i < 2000; i++) deep(20, issue);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) deep(20, issue);
    void keep;
    return Number(process.hrtime.bigint() - t0) / N;
  };
  const runs: Record<string, number[]> = { none: [], cached: [], exact1: [], exact4: [], exact10: [] };
  for (let r = 0; r < 5; r++) {
    runs.none!.push(per(0, true));
    runs.cached!.push(per(4, true));
    runs.exact1!.push(per(1, false));
    runs.exact4!.push(per(4, false));
    runs.exact10!.push(per(10, false));
  }
  installInstrumentation({ recordValues: false });
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
}

async function main(): Promise<void> {
  const out = { pg: await pgCost(), postgres: await postgresCost(), mysql2: await mysql2Cost(), mariadb: await mariadbCost(), statementNs: statementCost() };
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err: unknown) => { process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n'); process.exitCode = 1; });
