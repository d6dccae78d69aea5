// DB forensics end to end, against the real PostgreSQL on 127.0.0.1: a slow query and lock contention show
// up in dumps with their SQL, route, call site and transaction, and the worker is not killed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from 'pg';
import type { Dump } from '../src/dump/types';
import { FIXTURES, Superv, alive, freePort, get, killAll, tempDir } from './helpers';
import { requireServer, waitFor } from './instrument-helpers';

const TABLE = `superv_e2e_${process.pid}`;
const admin = new Client({ host: '127.0.0.1', user: 'postgres', database: 'postgres' });

before(async () => {
  await requireServer('postgres');
  await admin.connect();
  await admin.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, balance int)`);
  await admin.query(`INSERT INTO ${TABLE} VALUES (1, 100)`);
});
after(async () => {
  await killAll();
  await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await admin.end();
});

type Db = { connections: Array<{ pending: Array<{ sql: string; request?: { url?: string; method?: string }; site?: { function: string; file: string; line: number } }>;
  transaction?: { request?: { url?: string }; statements: Array<{ sql: string }> } }> };

function db(d: Dump): Db {
  return (d.capture?.state as { db: Db }).db;
}

async function start() {
  const port = await freePort();
  const s = new Superv(['start', join(FIXTURES, 'db-app.js'), '-w', '1', '--slow', '1s', '--timeout', '30s', '--dump-dir', tempDir(),
    '--heartbeat-interval', '200ms'], { env: { PORT: String(port), TABLE } });
  await s.waitEvent('master-ready');
  return { s, port };
}

test('a slow query: the slow dump shows the SQL, the route and the call site; the worker lives', async () => {
  const { s, port } = await start();
  const [pid] = s.workerPids();
  assert.equal((await get(port, '/report')).status, 200);
  const [written] = await s.waitEvent('dump-written', 1, 15000, (l) => l.reason === 'slow');
  const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
  const pending = db(d).connections.flatMap((c) => c.pending);
  const q = pending.find((p) => /pg_sleep/.test(p.sql));
  assert.ok(q, JSON.stringify(db(d)).slice(0, 2000));
  assert.equal(q.request?.url, '/report');
  assert.equal(q.site?.function, 'loadReport');
  assert.match(q.site!.file, /db-app\.js$/);
  assert.ok(alive(pid!));
  assert.equal(s.events('worker-exited').length, 0);
  await s.kill();
});

test('lock contention: the dump shows the waiting statement and the transaction holding the row', async () => {
  const { s, port } = await start();
  const hold = get(port, '/hold?ms=4000');
  // The server's word that the holder has the row (its UPDATE done, idle in its transaction), not a sleep.
  await waitFor('the holder to lock the row', async () => (await admin.query(
    `SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE $1`, [`UPDATE ${TABLE}%`])).rowCount === 1 || undefined);
  const transfer = get(port, '/transfer');
  const [written] = await s.waitEvent('dump-written', 1, 15000, (l) => l.reason === 'slow' &&
    (JSON.parse(readFileSync(l.file as string, 'utf8')) as Dump).request?.url === '/transfer');
  const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
  const conns = db(d).connections;
  const waiting = conns.flatMap((c) => c.pending).find((p) => /UPDATE .* balance \+ 1/.test(p.sql));
  assert.ok(waiting, JSON.stringify(conns).slice(0, 2000));
  assert.equal(waiting.request?.url, '/transfer');
  assert.equal(waiting.site?.function, 'transferFunds');
  const holder = conns.find((c) => c.transaction?.request?.url?.startsWith('/hold'));
  assert.ok(holder, 'the holding transaction is listed with its request');
  assert.ok(holder.transaction!.statements.some((st) => /FOR UPDATE/.test(st.sql)), 'with its statements');
  assert.equal((await hold).status, 200);
  assert.equal((await transfer).status, 200);
  await s.kill();
});

test('app state providers: their JSON is in the dump; one that throws or never returns does not break or delay it', async () => {
  for (const hang of [false, true]) {
    const port = await freePort();
    const s = new Superv(['start', join(FIXTURES, 'provider-app.js'), '-w', '1', '--dump-timeout', '2s', '--dump-dir', tempDir()],
      { env: { PORT: String(port), ...(hang ? { HANG_PROVIDER: '1' } : {}) } });
    await s.waitEvent('master-ready');
    const [pid] = s.workerPids();
    const t0 = Date.now();
    process.kill(pid!, 'SIGUSR2');
    const [written] = await s.waitEvent('dump-written', 1, 10000);
    assert.ok(Date.now() - t0 < 2000 + 1500, `dump took ${Date.now() - t0} ms`);
    const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
    assert.ok(d.capture, `the capture is in the dump (it was not: ${d.captureError})`);
    if (!hang) {
      assert.deepEqual((d.capture!.state as Record<string, unknown>).jobs, { waiting: 3, oldestJob: 'resize-image' });
      assert.match(JSON.stringify((d.capture!.state as Record<string, unknown>).cache), /cache client not connected/);
    } else {
      assert.equal(d.capture!.complete, false, 'the probe was cut off');
      assert.ok(d.capture!.incomplete, 'and the dump says why');
    }
    assert.ok(alive(pid!));
    assert.equal((await get(port, '/')).status, 200, 'the app carries on');
    await s.kill();
  }
});
