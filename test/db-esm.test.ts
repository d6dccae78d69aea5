// ESM apps: `import pg from 'pg'`, `import mysql from 'mysql2/promise'`, `import postgres from 'postgres'` and
// `import { createConnection } from 'mariadb'` are instrumented with no change to the app. test/fixtures/db-esm.mjs runs as a child process with the compiled instrumentation
// preloaded by `--require` or by `--import`, and prints the `db` provider's output while a statement of
// each driver is pending.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import type { DbState } from '../src/worker/instrument';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const APP = join(FIXTURES, 'db-esm.mjs');

interface Output {
  instrumented: boolean;
  pgLine: number;
  mysqlLine: number;
  postgresLine: number;
  mariadbLine: number;
  pg: DbState;
  mysql: DbState;
  postgres: DbState;
  mariadb: DbState;
}

function run(preload: string[]): Output {
  const r = spawnSync(process.execPath, [...preload, APP], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `fixture failed: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Output;
}

function check(out: Output): void {
  assert.equal(out.instrumented, true);
  const pg = out.pg.connections.find((c) => c.driver === 'pg');
  assert.ok(pg, 'the pg connection is listed');
  assert.equal(pg.pending[0]?.sql, 'SELECT pg_sleep(1)');
  assert.equal(pg.pending[0]?.site?.file, APP, 'the call site is the ES module (file: URL made a path)');
  assert.equal(pg.pending[0]?.site?.line, out.pgLine);
  assert.deepEqual(pg.pending[0]?.request, { id: 41, method: 'GET', url: '/esm/41' });
  assert.equal(typeof pg.serverId, 'number');
  const my = out.mysql.connections.find((c) => c.driver === 'mysql2');
  assert.ok(my, 'the mysql2 connection is listed');
  assert.equal(my.pending[0]?.sql, 'SELECT SLEEP(1)');
  assert.equal(my.pending[0]?.site?.line, out.mysqlLine);
  assert.equal(my.pending[0]?.request?.id, 42);
  assert.equal(out.pg.notes, undefined, 'seen loading: not instrumented late');
  for (const [driver, state, line, id, sql] of [['postgres', out.postgres, out.postgresLine, 43, 'SELECT pg_sleep(3)'],
    ['mariadb', out.mariadb, out.mariadbLine, 44, 'SELECT SLEEP(1)']] as const) {
    const c = state.connections.find((x) => x.driver === driver);
    assert.ok(c, `the ${driver} connection is listed: ${JSON.stringify(state).slice(0, 1500)}`);
    assert.equal(c.pending[0]?.sql, sql);
    assert.equal(c.pending[0]?.site?.file, APP);
    assert.equal(c.pending[0]?.site?.line, line);
    assert.equal(c.pending[0]?.request?.id, id);
    assert.equal(typeof c.serverId, 'number', 'backend pid / thread id');
  }
}

test('ESM app, instrumentation preloaded with --require', () => {
  check(run(['--require', join(FIXTURES, 'db-preload.js')]));
});

test('ESM app, instrumentation preloaded with --import', () => {
  check(run(['--import', join(FIXTURES, 'db-preload.mjs')]));
});

test('a loader that supplies CommonJS source hides the load: the first dump instruments late and says so', () => {
  const out = run(['--require', join(FIXTURES, 'db-preload.js'), '--import', join(FIXTURES, 'db-source-loader.mjs')]);
  assert.equal(out.instrumented, true);
  const note = out.pg.notes?.find((n) => n.includes('instrumented late'));
  assert.ok(note, `the dump says so: ${JSON.stringify(out.pg.notes)}`);
  assert.match(note, /\bpg\b/);
  // The pg statement was issued before that first dump; the mysql2 one after it, and is listed.
  const my = out.mysql.connections.find((c) => c.driver === 'mysql2');
  assert.equal(my?.pending[0]?.sql, 'SELECT SLEEP(1)');
  assert.equal(my?.pending[0]?.site?.line, out.mysqlLine);
});
