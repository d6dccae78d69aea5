// What the instrumentation costs per query, measured rather than hoped for. Numbers go to the TAP output
// as diagnostics (`node --test dist/test/db-overhead.test.js`); the asserts only guard against gross
// regressions, because this machine is shared and noisy.
//
// In one process, the drivers' prototypes are switched between the wrapped methods and the originals
// (patch.ts keeps them), a fresh connection is opened in each mode (pg binds its message handlers at
// connect), and rounds alternate modes so that load changes hit both. The cost is CPU time per query
// (process.cpuUsage), the meaningful number for a CPU-bound server.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { installInstrumentation } from '../src/forensics/instrument';
import { originalOf } from '../src/forensics/instrument/patch';
import { newStatement } from '../src/forensics/instrument/state';

installInstrumentation({ recordValues: false });
const pg = require('pg') as typeof import('pg');
const mysql = require('mysql2/promise') as typeof import('mysql2/promise');
const mysqlCore = require('mysql2') as typeof import('mysql2');

const QUERIES = 1500;
const ROUNDS = 5;

type Mode = 'off' | 'on' | 'on, no call sites';
const MODES: Mode[] = ['off', 'on', 'on, no call sites'];

function switcher(proto: object, names: string[]): (mode: Mode) => void {
  const p = proto as Record<string, unknown>;
  const wrapped = names.map((n) => p[n]);
  for (const w of wrapped) assert.notEqual(originalOf(w), w, 'the method is instrumented');
  return (mode) => {
    names.forEach((n, i) => { p[n] = mode === 'off' ? originalOf(wrapped[i]) : wrapped[i]; });
    installInstrumentation({ recordValues: false, callSiteFrames: mode === 'on, no call sites' ? 0 : undefined });
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** CPU µs per query over `n` sequential queries. */
async function cpuPerQuery(n: number, one: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 100; i++) await one();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await one();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

async function measure(t: TestContext, label: string, setMode: (m: Mode) => void, session: () => Promise<{ one(): Promise<unknown>; close(): Promise<void> }>): Promise<Record<Mode, number>> {
  const samples: Record<Mode, number[]> = { off: [], on: [], 'on, no call sites': [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of MODES) {
      setMode(mode);
      const s = await session();
      try {
        samples[mode].push(await cpuPerQuery(QUERIES, s.one));
      } finally {
        await s.close();
      }
    }
  }
  setMode('on');
  const m = { off: median(samples.off), on: median(samples.on), 'on, no call sites': median(samples['on, no call sites']) };
  t.diagnostic(`${label}: CPU per query, median of ${ROUNDS}×${QUERIES}: off ${m.off.toFixed(1)} µs, on ${m.on.toFixed(1)} µs ` +
    `(+${(m.on - m.off).toFixed(1)} µs, ${(((m.on - m.off) / m.off) * 100).toFixed(1)} %), on without call sites ${m['on, no call sites'].toFixed(1)} µs`);
  return m;
}

test('per-query cost: pg SELECT 1', async (t) => {
  const setMode = switcher(pg.Client.prototype, ['query', '_handleReadyForQuery', '_handleErrorMessage']);
  const m = await measure(t, 'pg', setMode, async () => {
    const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });
    await c.connect();
    return { one: () => c.query('SELECT 1'), close: () => c.end() };
  });
  // A gross-regression guard only (an eager stack format or a leak would be far above this).
  assert.ok(m.on - m.off < 250, `instrumentation costs ${m.on - m.off} µs per query`);
});

test('per-query cost: mysql2 (promise API) SELECT 1', async (t) => {
  let owner: object | null = mysqlCore.Connection.prototype;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, 'query')) owner = Object.getPrototypeOf(owner) as object | null;
  assert.ok(owner);
  const setMode = switcher(owner, ['query', 'execute']);
  const m = await measure(t, 'mysql2', setMode, async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test' });
    return { one: () => c.query('SELECT 1'), close: () => c.end() };
  });
  assert.ok(m.on - m.off < 250, `instrumentation costs ${m.on - m.off} µs per query`);
});

test('the call-site capture alone, 20 frames below the app', (t) => {
  function deep(n: number, fn: () => void): void {
    if (n === 0) fn();
    else deep(n - 1, fn);
  }
  const N = 20000;
  const per = (frames: number): number => {
    installInstrumentation({ recordValues: false, callSiteFrames: frames });
    let keep: unknown;
    const issue = function issue(): void { keep = newStatement('SELECT 1', undefined, issue); };
    for (let i = 0; i < 2000; i++) deep(20, issue);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) deep(20, issue);
    void keep;
    return Number(process.hrtime.bigint() - t0) / N;
  };
  const base = median([per(0), per(0), per(0)]);
  const ten = median([per(10), per(10), per(10)]);
  const five = median([per(5), per(5), per(5)]);
  installInstrumentation({ recordValues: false });
  t.diagnostic(`Statement without call site ${base.toFixed(0)} ns; with a 5-frame capture ${five.toFixed(0)} ns; 10 frames (default) ${ten.toFixed(0)} ns`);
  assert.ok(ten > base, 'capturing frames costs something: the measurement measures');
});
