// The lock look-up end to end, against the real PostgreSQL and MariaDB on 127.0.0.1, through each driver
// superv instruments (pg, mysql2, postgres.js, mariadb: the DRIVERS table): a slow request that
// waits on a lock gets a dump naming who holds it: a session outside superv (the test process's own
// client, idle in transaction), a request on another worker (which gets a dump naming its waiter), the
// head of a chain of three, a table lock, a deadlock. Denied and unreachable look-ups still give a dump,
// on time. `superv dumps` and `superv report` are read on the real dumps.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import type { LockWait } from '../src/dump/locks';
import type { Dump } from '../src/dump/types';
import { CLI, FIXTURES, freePort, get, killAll, sleep, startSuperv, type Superv } from './helpers';

const TABLE = `i16_locks_${process.pid}`;
const APP = join(FIXTURES, 'lock-app.js');

/** The drivers the look-up supports, as lock-app.js's DB names them, and the server each one talks to. */
const DRIVERS = { pg: 'pg', mysql: 'mysql', postgres: 'pg', mariadb: 'mysql' } as const;
type Db = keyof typeof DRIVERS;
const dbs = Object.keys(DRIVERS) as Db[];

async function pgAdmin(): Promise<Client> {
  const c = new Client({ host: '127.0.0.1', user: 'postgres', database: 'test', application_name: 'i16-outside' });
  await c.connect();
  return c;
}

async function myAdmin(): Promise<mysql.Connection> {
  return mysql.createConnection({ host: '127.0.0.1', user: 'root', database: 'test' });
}

before(async () => {
  const pg = await pgAdmin();
  await pg.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)`);
  await pg.query(`INSERT INTO ${TABLE} (id) SELECT generate_series(1, 5)`);
  await pg.end();
  const my = await myAdmin();
  await my.query(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, n int NOT NULL DEFAULT 0) ENGINE=InnoDB`);
  await my.query(`INSERT INTO ${TABLE} (id) VALUES (1), (2), (3), (4), (5)`);
  await my.end();
});

after(async () => {
  await killAll();
  const pg = await pgAdmin();
  await pg.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await pg.end();
  const my = await myAdmin();
  await my.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await my.end();
});

/** A session of the test process itself, outside superv, idle in a transaction that holds row `id`. */
async function outsideHolder(db: Db, id: number): Promise<{ holderId: number; release: () => Promise<void> }> {
  let done = false;
  if (DRIVERS[db] === 'pg') {
    const c = await pgAdmin();
    await c.query('BEGIN');
    await c.query(`UPDATE ${TABLE} SET n = n + 1 WHERE id = $1`, [id]);
    const holderId = (c as unknown as { processID: number }).processID;
    return { holderId, release: async () => { if (done) return; done = true; await c.query('ROLLBACK').catch(() => undefined); await c.end(); } };
  }
  const c = await myAdmin();
  await c.query('BEGIN');
  await c.query(`UPDATE ${TABLE} SET n = n + 1 WHERE id = ?`, [id]);
  return { holderId: c.threadId, release: async () => { if (done) return; done = true; await c.query('ROLLBACK').catch(() => undefined); await c.end(); } };
}

/** Until the server shows a statement on this run's table waiting on a lock: then it has reached the server. */
async function untilWaiting(db: Db): Promise<void> {
  const pg = DRIVERS[db] === 'pg';
  const c = pg ? await pgAdmin() : await myAdmin();
  try {
    for (let tries = 0; ; tries++) {
      assert.ok(tries < 150, 'no session waits on a lock');
      const n = pg
        ? Number((await (c as Client).query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0", [TABLE])).rows[0]?.n)
        : Number(((await (c as mysql.Connection).query("SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' AND LOCATE(?, trx_query) > 0", [TABLE]))[0] as Array<{ n: number }>)[0]?.n);
      if (n > 0) return;
      await sleep(100);
    }
  } finally {
    await c.end();
  }
}

function readDump(file: string): Dump {
  return JSON.parse(readFileSync(file, 'utf8')) as Dump;
}

async function start(db: Db, workers: number, extra: string[] = [], env: Record<string, string> = {}) {
  return startSuperv(APP, ['-w', String(workers), '--slow', '1s', '--timeout', '60s', '--dump-timeout', '5s', ...extra],
    { env: { TABLE, DB: db, ...env } });
}

/** The first dump whose request is `path` (and, optionally, that has a lock wait). */
async function dumpOf(s: Superv, path: string, withWait = true, timeoutMs = 20000): Promise<{ file: string; dump: Dump }> {
  const [line] = await s.waitEvent('dump-written', 1, timeoutMs, (l) => {
    const d = readDump(l.file as string);
    return d.request?.url.startsWith(path) === true && (!withWait || (d.capture?.locks?.waits.length ?? 0) > 0);
  });
  return { file: line!.file as string, dump: readDump(line!.file as string) };
}

/** The dump's own request's wait (a dump lists every waiting statement of its worker). */
function theWait(d: Dump): LockWait {
  const w = d.capture?.locks?.waits.find((x) => x.requestId === d.request?.id);
  assert.ok(w, `a lock wait in the dump: ${JSON.stringify(d.capture?.locks)}`);
  return w;
}

/** Keep-alive agents, one per worker: HTTP connections stay on the worker that accepted them. */
async function agentsOnDistinctWorkers(port: number, n: number): Promise<Array<{ agent: http.Agent; pid: number }>> {
  const out: Array<{ agent: http.Agent; pid: number }> = [];
  for (let tries = 0; out.length < n; tries++) {
    assert.ok(tries < 50, 'could not reach distinct workers');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const pid = Number((await get(port, '/pid', { agent })).body);
    if (out.some((x) => x.pid === pid)) agent.destroy();
    else out.push({ agent, pid });
  }
  return out;
}

export function supervCli(args: string[]): Promise<string> {
  return promisify(execFile)(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1' } }).then((r) => r.stdout);
}

for (const db of dbs) {
  const server = DRIVERS[db];
  describe(`${db}`, () => {
    test(`${db}: a holder outside superv, idle in transaction, is named with its id, state and SQL`, async (t) => {
      const { s, port, dir } = await start(db, 1);
      let holderId: number;
      let release: () => Promise<unknown>;
      if (server === 'pg') {
        const c = await pgAdmin();
        holderId = (c as unknown as { processID: number }).processID;
        await c.query('BEGIN');
        await c.query(`UPDATE ${TABLE} SET n = n + 1 WHERE id = 1`);
        release = async () => { await c.query('ROLLBACK'); await c.end(); };
      } else {
        const c = await myAdmin();
        holderId = c.threadId;
        await c.query('BEGIN');
        await c.query(`UPDATE ${TABLE} SET n = n + 1 WHERE id = 1`);
        release = async () => { await c.query('ROLLBACK'); await c.end(); };
      }
      try {
        const waiting = get(port, '/wait?id=1', { timeoutMs: 30000 });
        const { dump } = await dumpOf(s, '/wait');
        const w = theWait(dump);
        t.diagnostic(w.sentence);
        assert.equal(w.chain[0]?.serverId, holderId);
        assert.equal(w.chain[0]?.ours, undefined, 'not one of ours');
        assert.match(w.sentence, new RegExp(`^blocked by ${holderId} \\(`));
        if (server === 'pg') {
          assert.match(w.sentence, /application i16-outside, client 127\.0\.0\.1:\d+, user postgres, idle in transaction, transaction open [\d.]+ m?s\): idle in transaction, last query `UPDATE i16_locks_\d+ SET n = n \+ 1 WHERE id = 1`/);
        } else {
          // InnoDB keeps no text for an idle transaction: the sentence says so and gives its last state.
          assert.match(w.sentence, /client 127\.0\.0\.1:\d+, user root, idle in transaction \(Sleep for \d+ s\), transaction open [\d.]+ m?s\): idle in transaction, last query unknown/);
        }
        assert.equal(w.site?.function, 'waitForRow');
        assert.match(w.sql ?? '', /^UPDATE i16_locks_\d+ SET n = n \+ 1/);
        await release();
        assert.equal((await waiting).status, 200);
        // `superv report`: the contention section groups the wait under the outside application / client.
        const report = await supervCli(['report', '--dir', dir]);
        assert.match(report, /lock contention/);
        const row = report.split('\n').find((l) => /UPDATE i16_locks_\d+ SET n = n \+ 1/.test(l));
        assert.ok(row, report);
        assert.match(row, server === 'pg' ? /application i16-outside \(user postgres\)/ : /client 127\.0\.0\.1 \(user root\)/);
      } finally {
        await release().catch(() => undefined);
        await s.kill();
      }
    });

    test(`${db}: a holder on another worker: the waiter's dump names its worker and request, the holder's dump its waiter`, async (t) => {
      const { s, port, dir } = await start(db, 2);
      const [a, b] = await agentsOnDistinctWorkers(port, 2);
      const hold = get(port, '/hold?id=2&ms=5000', { agent: a!.agent, timeoutMs: 30000 });
      await sleep(300);
      const waiting = get(port, '/wait?id=2', { agent: b!.agent, timeoutMs: 30000 });
      const { dump } = await dumpOf(s, '/wait');
      assert.equal(dump.worker.pid, b!.pid);
      const w = theWait(dump);
      t.diagnostic(w.sentence);
      const h = w.chain[0]!;
      assert.equal(h.ours?.workerPid, a!.pid, JSON.stringify(w));
      assert.equal(h.ours?.method, 'GET');
      assert.match(h.ours?.url ?? '', /^\/hold/);
      assert.ok(h.ours?.statements?.some((x) => /FOR UPDATE/.test(x)), `the holding transaction's statements: ${JSON.stringify(h.ours)}`);
      assert.match(w.sentence, new RegExp(`^blocked by ${h.serverId} \\(worker ${a!.pid} GET /hold \\(request \\d+, [\\d.]+ m?s\\), `));
      // The holder's own dump names whom it blocks.
      const [line] = await s.waitEvent('dump-written', 1, 20000, (l) => readDump(l.file as string).blocks !== undefined);
      const hd = readDump(line!.file as string);
      assert.equal(hd.worker.pid, a!.pid);
      assert.equal(hd.reason, 'slow');
      assert.match(hd.summary, /holds a lock that 1 request waits on/);
      assert.equal(hd.blocks?.[0]?.workerPid, b!.pid);
      assert.match(hd.blocks?.[0]?.url ?? '', /^\/wait/);
      assert.match(hd.request?.url ?? '', /^\/hold/);
      assert.equal((await hold).status, 200);
      assert.equal((await waiting).status, 200);
      // `superv dumps`: the WHERE of the waiter's dump is the app line that issued the SQL and the sentence.
      const list = await supervCli(['dumps', '--dir', dir]);
      const listed = list.split('\n').find((l) => /\/wait/.test(l));
      assert.ok(listed, list);
      assert.match(listed, new RegExp(`waitForRow lock-app\\.js:\\d+ blocked by ${h.serverId} \\(worker ${a!.pid} GET /hold`));
      assert.doesNotMatch(list, /awaiting I\/O, loop free/);
      assert.match(list, /GET \/hold .* withTx lock-app\.js:\d+ idle in transaction for /, 'the holder: where its transaction was opened');
      // `superv report`: the contention section names the holder's route; the HTML page too.
      const report = await supervCli(['report', '--dir', dir]);
      const row = report.split('\n').find((l) => /UPDATE i16_locks_\d+ SET n = n \+ 1/.test(l));
      assert.ok(row && /waitForRow lock-app\.js:\d+/.test(row) && /GET \/hold/.test(row), report);
      const html = join(dir, 'report.html');
      await supervCli(['report', '--dir', dir, '--html', html]);
      const page = readFileSync(html, 'utf8');
      assert.match(page, /<section id="lock-contention">[^]*class="route ours">GET \/hold</);
      a!.agent.destroy();
      b!.agent.destroy();
      await s.kill();
    });
  });
}

for (const db of dbs) {
  const server = DRIVERS[db];
  describe(`${db}, more shapes`, () => {
    test(`${db}: a chain of three: the waiter's dump walks to the head, outside superv`, async (t) => {
      const { s, port, dir } = await start(db, 1);
      const outside = await outsideHolder(db, 3);
      try {
        const middle = get(port, '/hold-wait?id=4&then=3', { timeoutMs: 30000 });
        middle.catch(() => undefined);
        await sleep(300);
        const waiting = get(port, '/wait?id=4', { timeoutMs: 30000 });
        waiting.catch(() => undefined);
        const { dump } = await dumpOf(s, '/wait');
        const w = theWait(dump);
        t.diagnostic(w.sentence);
        assert.equal(w.chain.length, 2, JSON.stringify(w.chain));
        assert.match(w.chain[0]!.ours?.url ?? '', /^\/hold-wait/, 'the middle is our /hold-wait request');
        assert.equal(w.chain[0]!.ours?.workerPid, dump.worker.pid);
        assert.equal(w.chain[1]!.serverId, outside.holderId, 'the head is the outside session');
        assert.match(w.sentence, new RegExp(`— which is blocked by ${outside.holderId} \\(`));
        await outside.release();
        assert.equal((await middle).status, 200);
        assert.equal((await waiting).status, 200);
        // The report groups the wait under the chain's head.
        const report = await supervCli(['report', '--dir', dir]);
        const row = report.split('\n').find((l) => /UPDATE i16_locks_\d+ SET n = n \+ 1/.test(l) && /waitForRow/.test(l));
        assert.ok(row, report);
        assert.match(row, server === 'pg' ? /application i16-outside/ : /client 127\.0\.0\.1/);
      } finally {
        await outside.release();
        await s.kill();
      }
    });

    test(`${db}: the look-up times out on a paused server: bounded, the dump is written anyway`, async () => {
      const proxyPort = await freePort();
      const proxy = spawn(process.execPath, [join(FIXTURES, 'tcp-proxy.js')],
        { env: { ...process.env, PORT: String(proxyPort), TARGET_PORT: server === 'pg' ? '5432' : '3306' }, stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => proxy.stdout!.once('data', r));
      const { s, port } = await start(db, 1, [], { DB_PORT: String(proxyPort) });
      const outside = await outsideHolder(db, 5);
      try {
        const waiting = get(port, '/wait?id=5', { timeoutMs: 30000 }).catch(() => undefined);
        await untilWaiting(db);
        process.kill(proxy.pid!, 'SIGSTOP');
        const [line] = await s.waitEvent('dump-written', 1, 20000, (l) => readDump(l.file as string).request?.url.startsWith('/wait') === true);
        const d = readDump(line!.file as string);
        const locks = d.capture?.locks;
        assert.ok(locks, 'the dump has the look-up field');
        assert.equal(locks.waits.length, 0);
        assert.match(locks.missing?.join(' ') ?? '', /did not finish within 500 ms/, JSON.stringify(locks));
        assert.ok((locks.elapsedMs ?? 0) < 2000, `bounded: ${locks.elapsedMs} ms`);
        process.kill(proxy.pid!, 'SIGCONT');
        await outside.release();
        await waiting;
      } finally {
        try { process.kill(proxy.pid!, 'SIGCONT'); proxy.kill('SIGKILL'); } catch { /* gone */ }
        await outside.release();
        await s.kill();
      }
    });

    test(`${db}: a waiting statement in a worker whose loop then blocks: the kill is on time, the dump says why no look-up`, async () => {
      const { s, port } = await start(db, 1, ['--timeout', '2s']);
      const outside = await outsideHolder(db, 5);
      try {
        const [pid] = s.workerPids();
        const t0 = Date.now();
        void get(port, '/wait-block?id=5&ms=60000', { timeoutMs: 30000 }).catch(() => undefined);
        const [killed] = await s.waitEvent('worker-killed', 1, 30000);
        assert.equal(killed!.pid, pid);
        // timeout 2 s + a heartbeat and the watchdog's word + dump-timeout 5 s, with room for a loaded machine.
        assert.ok(Date.now() - t0 < 15000, `killed after ${Date.now() - t0} ms`);
        const [line] = await s.waitEvent('dump-written', 1, 20000, (l) => l.reason === 'timeout');
        const d = readDump(line!.file as string);
        assert.equal(d.action, 'killed');
        assert.match(d.capture?.locks?.missing?.join(' ') ?? '', /event loop was blocked/, JSON.stringify(d.capture?.locks));
      } finally {
        await outside.release();
        await s.kill();
      }
    });

    test(`${db}: a driver first required inside a request ties that request's statements to it`, async () => {
      // Loading the driver inside the request takes a while on a busy machine: the slow dump must come after it.
      const { s, port } = await start(db, 1, ['--slow', '3s'], { LAZY: '1' });
      const outside = await outsideHolder(db, 1);
      try {
        const waiting = get(port, '/wait?id=1', { timeoutMs: 30000 });
        const { dump } = await dumpOf(s, '/wait');
        const w = theWait(dump);
        assert.equal(w.requestId, dump.request?.id, 'the waiting statement belongs to the request that loaded the driver');
        assert.equal(w.chain[0]?.serverId, outside.holderId);
        const text = JSON.stringify(dump.capture?.state?.db);
        assert.doesNotMatch(text, /outside any request/, text.slice(0, 2000));
        assert.match(text, /GET \/wait \(request \d+\) has waited/);
        await outside.release();
        assert.equal((await waiting).status, 200);
      } finally {
        await outside.release();
        await s.kill();
      }
    });

    for (const lazy of [false, true]) {
      test(`${db}: an ESM app${lazy ? ' importing the driver inside a request' : ''}: the waiter's dump names the holder`, async () => {
        const { s, port } = await startSuperv(join(FIXTURES, 'lock-esm.mjs'), ['-w', '1', '--slow', lazy ? '3s' : '1s', '--dump-timeout', '5s'],
          { env: { TABLE, DB: db, ...(lazy ? { LAZY: '1' } : {}) } });
        const outside = await outsideHolder(db, 2);
        try {
          const waiting = get(port, '/wait?id=2', { timeoutMs: 30000 });
          const { dump } = await dumpOf(s, '/wait');
          const w = dump.capture?.locks?.waits.find((x) => /^UPDATE/.test(x.sql ?? ''));
          assert.ok(w, JSON.stringify(dump.capture?.locks));
          assert.equal(w.chain[0]?.serverId, outside.holderId);
          assert.equal(w.site?.function, 'waitForRow');
          const text = JSON.stringify(dump.capture?.state?.db);
          assert.doesNotMatch(text, /outside any request/, text.slice(0, 2000));
          if (!lazy) assert.equal(w.requestId, dump.request?.id);
          // Imported lazily, the import finishes outside the request's context: then it is "request unknown", with the reason.
          else if (w.requestId !== dump.request?.id) assert.match(text, /request unknown \(the database driver was first loaded while 1 request\(s\) were in flight \(GET \/wait/);
          await outside.release();
          assert.equal((await waiting).status, 200);
        } finally {
          await outside.release();
          await s.kill();
        }
      });
    }
  });
}

describe('PostgreSQL only', () => {
  test('pg: a lock on a whole table names the table and the lock modes', async (t) => {
    const { s, port } = await start('pg', 1);
    const table = get(port, '/table?ms=4000', { timeoutMs: 30000 });
    await sleep(300);
    const waiting = get(port, '/count', { timeoutMs: 30000 });
    const { dump } = await dumpOf(s, '/count');
    const w = theWait(dump);
    t.diagnostic(w.sentence);
    assert.match(w.waitingFor ?? '', /^AccessShareLock on table i16_locks_\d+$/);
    assert.match(w.chain[0]?.lock ?? '', /^AccessExclusiveLock on table i16_locks_\d+$/);
    assert.match(w.chain[0]?.ours?.url ?? '', /^\/table/);
    assert.match(w.sentence, /idle in transaction, last query `LOCK TABLE i16_locks_\d+ IN ACCESS EXCLUSIVE MODE`/);
    assert.equal((await table).status, 200);
    assert.equal((await waiting).status, 200);
    await s.kill();
  });

  test('pg: a deadlock across two workers is reported as one, the server ends it, and there is no dump storm', async (t) => {
    const { s, port } = await start('pg', 2);
    const [a, b] = await agentsOnDistinctWorkers(port, 2);
    const one = get(port, '/deadlock?a=1&b=2', { agent: a!.agent, timeoutMs: 30000 });
    const two = get(port, '/deadlock?a=2&b=1', { agent: b!.agent, timeoutMs: 30000 });
    const { dump } = await dumpOf(s, '/deadlock');
    const w = theWait(dump);
    t.diagnostic(w.sentence);
    assert.match(w.sentence, /a deadlock: the chain comes back to this statement/);
    const results = await Promise.all([one, two]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 500]);
    assert.ok(results.some((r) => /deadlock detected/.test(r.body)));
    await sleep(2000);
    const dumps = s.events('dump-written').length;
    // Two slow dumps (one per side) and at most one holder dump per side.
    assert.ok(dumps <= 4, `${dumps} dumps`);
    a!.agent.destroy();
    b!.agent.destroy();
    await s.kill();
  });

  test('pg: a role that may not see other users\' sessions: the holder is named, its query is said to be hidden', async (t) => {
    const role = `i16_app_${process.pid}`;
    const admin = await pgAdmin();
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`GRANT SELECT, UPDATE ON ${TABLE} TO ${role}`);
    const { s, port } = await start('pg', 1, [], { DB_USER: role });
    const outside = await outsideHolder('pg', 1);
    try {
      const waiting = get(port, '/wait?id=1', { timeoutMs: 30000 });
      const { dump } = await dumpOf(s, '/wait');
      const w = theWait(dump);
      t.diagnostic(w.sentence);
      assert.equal(w.chain[0]?.serverId, outside.holderId);
      assert.match(w.sentence, /query not shown \(another user's session: the app's role needs pg_read_all_stats/);
      await outside.release();
      assert.equal((await waiting).status, 200);
    } finally {
      await outside.release();
      await s.kill();
      await admin.query(`DROP OWNED BY ${role}`);
      await admin.query(`DROP ROLE ${role}`);
      await admin.end();
    }
  });
});

describe('MariaDB only', () => {
  test('mysql: a user without the PROCESS privilege: the look-up is denied, the dump is written and says why', async () => {
    const user = `i16_denied_${process.pid}`;
    const admin = await myAdmin();
    await admin.query(`CREATE USER '${user}'@'%'`);
    await admin.query(`CREATE USER '${user}'@'localhost'`);
    for (const host of ['%', 'localhost']) await admin.query(`GRANT SELECT, UPDATE ON test.${TABLE} TO '${user}'@'${host}'`);
    const { s, port, dir } = await start('mysql', 1, [], { DB_USER: user });
    const outside = await outsideHolder('mysql', 1);
    try {
      const waiting = get(port, '/wait?id=1', { timeoutMs: 30000 });
      const [line] = await s.waitEvent('dump-written', 1, 20000, (l) => readDump(l.file as string).request?.url.startsWith('/wait') === true);
      const d = readDump(line!.file as string);
      assert.equal(d.capture?.locks?.waits.length, 0);
      assert.match(d.capture?.locks?.missing?.join(' ') ?? '', /PROCESS privilege/, JSON.stringify(d.capture?.locks));
      const list = await supervCli(['dumps', '--dir', dir]);
      assert.match(list, /waitForRow lock-app\.js:\d+ awaiting SQL `UPDATE i16_locks_\d+ SET n = n \+ 1 WHERE id = \?` \(no lock look-up: /);
      await outside.release();
      assert.equal((await waiting).status, 200);
    } finally {
      await outside.release();
      await s.kill();
      for (const host of ['%', 'localhost']) await admin.query(`DROP USER IF EXISTS '${user}'@'${host}'`);
      await admin.end();
    }
  });
});

test('--no-lock-lookup: no look-up, and the dump says it is turned off', async () => {
  const { s, port } = await start('pg', 1, ['--no-lock-lookup']);
  const outside = await outsideHolder('pg', 1);
  try {
    const waiting = get(port, '/wait?id=1', { timeoutMs: 30000 });
    const [line] = await s.waitEvent('dump-written', 1, 20000, (l) => readDump(l.file as string).request?.url.startsWith('/wait') === true);
    const d = readDump(line!.file as string);
    assert.deepEqual(d.capture?.locks, { waits: [], missing: ['the lock look-up is turned off (lock_lookup: false, --no-lock-lookup)'] });
    await outside.release();
    assert.equal((await waiting).status, 200);
  } finally {
    await outside.release();
    await s.kill();
  }
});
