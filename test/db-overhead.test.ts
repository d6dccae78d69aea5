// What the instrumentation costs per query, measured rather than hoped for. Numbers go to the TAP output
// as diagnostics (`node --test dist/test/db-overhead.test.js`); the asserts only guard against gross
// regressions, because this machine is shared and noisy.
//
// In one process, on one connection, the drivers' query methods are switched between the wrappers and
// the originals (patch.ts keeps them) between short batches. pg's ReadyForQuery wrapper, bound at
// connect, stays on in every mode: for an untracked query it is a property read and a return. The cost is CPU time per query
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
async function measure(t: TestContext, label: string, setMode: (m: Mode) => void, open: () => Promise<Session>): Promise<Record<Mode, number>> {
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
  const m = Object.fromEntries(MODES.map((k) => [k, median(samples[k])])) as Record<Mode, number>;
  const d = (k: Mode): string => `${m[k].toFixed(1)} µs (${m[k] >= m.off ? '+' : ''}${(m[k] - m.off).toFixed(1)})`;
  t.diagnostic(`${label}: CPU per query, median of ${BATCHES} batches of ${BATCH}: off ${m.off.toFixed(1)} µs; ` +
    `on (default) ${d('on')}; exact call sites ${d('on, exact call sites')}; no call sites ${d('on, no call sites')}`);
  return m;
}

test('per-query cost: pg, a one-row SELECT', async (t) => {
  const setMode = switcher(pg.Client.prototype, ['query']);
  const m = await measure(t, 'pg', setMode, async () => {
    const c = new pg.Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });
    await c.connect();
    return { one: () => c.query('SELECT 1 AS superv_overhead'), close: () => c.end() };
  });
  // A gross-regression guard only (an eager stack format or a leak would be far above this).
  assert.ok(m.on - m.off < 100, `instrumentation costs ${m.on - m.off} µs per query`);
});

test('per-query cost: mysql2 (promise API), a one-row SELECT', async (t) => {
  let owner: object | null = mysqlCore.Connection.prototype;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, 'query')) owner = Object.getPrototypeOf(owner) as object | null;
  assert.ok(owner);
  const setMode = switcher(owner, ['query', 'execute']);
  const m = await measure(t, 'mysql2', setMode, async () => {
    const c = await mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test' });
    return { one: () => c.query('SELECT 1 AS superv_overhead'), close: () => c.end() };
  });
  assert.ok(m.on - m.off < 100, `instrumentation costs ${m.on - m.off} µs per query`);
});

test('one Statement, 20 frames below the app: cached call site, exact capture, none', (t) => {
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
  const m = (k: string): number => median(runs[k]!);
  t.diagnostic(`one Statement: no call site ${m('none').toFixed(0)} ns; cached call site (default) ${m('cached').toFixed(0)} ns; ` +
    `exact capture of 1 frame ${m('exact1').toFixed(0)} ns, 4 frames ${m('exact4').toFixed(0)} ns, 10 frames ${m('exact10').toFixed(0)} ns`);
  assert.ok(m('exact4') > m('cached'), 'the cache saves the capture: the measurement measures');
});
