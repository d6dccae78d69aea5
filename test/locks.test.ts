// The pure parts of the lock look-up: the sentence's fixed form, the server-version choice, the report's
// grouping, and the master's holder naming and its rate limit (no dump storm), with stand-in workers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lockSentence, type LockWait } from '../src/dump/locks';
import type { Capture } from '../src/dump/types';
import { LockHolders, MAX_HOLDER_DUMPS } from '../src/master/lock-holders';
import type { DumpRequest } from '../src/master/dump';
import type { WorkerHandle } from '../src/master/worker-handle';
import { holderGroup } from '../src/reader/facts';
import type { SideSession } from '../src/worker/instrument/lock-lookup';
import { INNODB_TABLES, levelSql, mysqlCatalog, PERFORMANCE_SCHEMA_TABLES, usesPerformanceSchema } from '../src/worker/instrument/lock-mysql';

function wait(over: Partial<LockWait> = {}): LockWait {
  return { kind: 'postgres', serverId: 10, chain: [], sentence: '', sql: 'UPDATE accounts SET n = n + 1 WHERE id = $1', requestId: 7, waitedMs: 3000, ...over };
}

test('the sentence: an outside holder idle in transaction', () => {
  const w = wait({ chain: [{ serverId: 4321, state: 'idle in transaction', query: 'UPDATE accounts SET n = 0', queryIsLast: true, txAgeMs: 12_300, application: 'psql', client: '10.0.0.7:5555', user: 'ops' }] });
  assert.equal(lockSentence(w), 'blocked by 4321 (application psql, client 10.0.0.7:5555, user ops, idle in transaction, transaction open 12.3 s): ' +
    'idle in transaction, last query `UPDATE accounts SET n = 0`');
});

test('the sentence: one of ours, a chain to its head, a deadlock, an InnoDB idle holder, a hidden query', () => {
  const ours = { serverId: 2, state: 'active', query: 'UPDATE b', txAgeMs: 900, ours: { workerPid: 99, requestId: 3, method: 'GET', url: '/pay?x=1', requestAgeMs: 1500 } };
  const head = { serverId: 3, state: 'idle in transaction (Sleep for 4 s)', queryUnknown: true, txAgeMs: 4000, user: 'root', client: '127.0.0.1:1' };
  assert.equal(lockSentence(wait({ chain: [ours, head] })),
    'blocked by 2 (worker 99 GET /pay (request 3, 1.5 s), active, transaction open 900 ms): `UPDATE b` — which is blocked by 3 (client 127.0.0.1:1, user root, ' +
    'idle in transaction (Sleep for 4 s), transaction open 4.0 s): idle in transaction, last query unknown (the server keeps no text for an idle transaction)');
  // The holder's worker knows the statements the server forgot.
  const known = { ...head, ours: { workerPid: 5, statements: ['BEGIN', 'SELECT 1 FOR UPDATE'] } };
  assert.match(lockSentence(wait({ chain: [known] })), /last query `SELECT 1 FOR UPDATE`$/);
  assert.match(lockSentence(wait({ serverId: 10, chain: [ours, { ...head, serverId: 10 }] })), /a deadlock: the chain comes back to this statement/);
  assert.match(lockSentence(wait({ chain: [{ serverId: 8, queryHidden: 'needs pg_read_all_stats' }] })),
    /^blocked by 8 \(a session outside superv, state unknown, transaction age unknown\): query not shown \(needs pg_read_all_stats\)$/);
  assert.equal(lockSentence(wait({ waitingFor: 'Waiting for table metadata lock' })), 'waiting (Waiting for table metadata lock), holder not identified');
});

test('MySQL 8 uses performance_schema; MariaDB and 5.7 the INNODB_LOCK_WAITS tables', () => {
  assert.equal(usesPerformanceSchema('8.0.36'), true);
  assert.equal(usesPerformanceSchema('9.1.0'), true);
  assert.equal(usesPerformanceSchema('5.7.44-log'), false);
  assert.equal(usesPerformanceSchema('10.11.19-MariaDB-0+deb12u1'), false);
  assert.equal(usesPerformanceSchema('11.4.2-MariaDB'), false);
});

// MySQL 8 is not on this machine (our CI runs MariaDB): its catalog is covered here, by the SQL the look-up
// sends and the mapping of rows shaped like MySQL 8's, never against a server.
test('one query over either catalog: the same columns, each catalog\'s own tables', () => {
  const innodb = levelSql(INNODB_TABLES);
  const ps = levelSql(PERFORMANCE_SCHEMA_TABLES);
  const columns = (sql: string) => [...sql.matchAll(/ AS (\w+)/g)].map((m) => m[1]);
  assert.deepEqual(columns(ps), columns(innodb));
  assert.match(innodb, /FROM information_schema\.INNODB_LOCK_WAITS w\s+JOIN information_schema\.INNODB_TRX r ON r\.trx_id = w\.requesting_trx_id\s+JOIN information_schema\.INNODB_TRX b ON b\.trx_id = w\.blocking_trx_id\s+LEFT JOIN information_schema\.INNODB_LOCKS l ON l\.lock_id = w\.blocking_lock_id/);
  assert.doesNotMatch(innodb, /performance_schema/);
  assert.match(ps, /FROM performance_schema\.data_lock_waits w\s+JOIN information_schema\.INNODB_TRX r ON r\.trx_id = w\.REQUESTING_ENGINE_TRANSACTION_ID\s+JOIN information_schema\.INNODB_TRX b ON b\.trx_id = w\.BLOCKING_ENGINE_TRANSACTION_ID\s+LEFT JOIN performance_schema\.data_locks l ON l\.ENGINE_LOCK_ID = w\.BLOCKING_ENGINE_LOCK_ID/);
  assert.match(ps, /CONCAT\(l\.OBJECT_SCHEMA, '\.', l\.OBJECT_NAME\) AS lock_table/);
  assert.match(ps, /SELECT COUNT\(\*\) FROM performance_schema\.data_lock_waits x WHERE x\.BLOCKING_ENGINE_TRANSACTION_ID = w\.BLOCKING_ENGINE_TRANSACTION_ID/);
  assert.doesNotMatch(ps, /INNODB_LOCK/);
});

/** A side session that answers from a script, and records what it was asked. */
function scripted(version: string, rows: Array<Record<string, unknown>>, states: Array<Record<string, unknown>> = []): SideSession & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async query(sql) {
      asked.push(sql);
      if (/VERSION\(\)/.test(sql)) return [{ v: version }];
      return /FROM information_schema\.PROCESSLIST WHERE ID IN/.test(sql) ? states : rows;
    },
    destroy() {},
  };
}

test('MySQL 8 rows: the holder, its lock and its idle state; a MariaDB asked at the same time keeps its own catalog', async () => {
  const row = {
    waiter: 41, holder: 40n, trx_state: 'RUNNING', trx_query: null, tx_ms: '4200', user: 'billing', host: '10.0.0.9:51000', db: 'shop',
    command: 'Sleep', idle_s: 4, lock_mode: 'X,REC_NOT_GAP', lock_type: 'RECORD', lock_table: 'shop.accounts', lock_index: 'PRIMARY', blocking: 2n,
  };
  const mysql8 = scripted('8.0.36', [row], [{ id: 43, state: 'Waiting for table metadata lock' }]);
  const maria = scripted('10.11.19-MariaDB-0+deb12u1', []);
  assert.equal(await mysqlCatalog.server(mysql8), 'MySQL 8.0.36 (performance_schema.data_lock_waits)');
  assert.equal(await mysqlCatalog.server(maria), 'MariaDB 10.11.19-MariaDB-0+deb12u1 (information_schema.INNODB_LOCK_WAITS)');
  const edges = await mysqlCatalog.level(mysql8, [41, 42, 43]);
  assert.match(mysql8.asked[1]!, /FROM performance_schema\.data_lock_waits w/);
  assert.deepEqual(edges.get(41), {
    waitingFor: 'LOCK WAIT (InnoDB)',
    holders: [{
      serverId: 40, state: 'idle in transaction (Sleep for 4 s)', queryUnknown: true, txAgeMs: 4200, user: 'billing', client: '10.0.0.9:51000',
      database: 'shop', lock: 'X,REC_NOT_GAP row lock on shop.accounts (index PRIMARY)', blocking: 2,
    }],
  });
  assert.equal(edges.has(42), false, 'a waiter the server lists nowhere is not a lock wait');
  assert.deepEqual(edges.get(43), { holders: [], waitingFor: 'Waiting for table metadata lock' });
  await mysqlCatalog.level(maria, [41]);
  assert.match(maria.asked[1]!, /FROM information_schema\.INNODB_LOCK_WAITS w/);
  // MySQL 5.7 names a table lock by its quoted name; a running holder gives its query.
  const old = scripted('5.7.44-log', [{ ...row, holder: 7, command: 'Query', trx_query: 'LOCK TABLES t WRITE', lock_type: 'TABLE', lock_table: '`shop`.`t`', lock_index: null }]);
  await mysqlCatalog.server(old);
  const h = (await mysqlCatalog.level(old, [41])).get(41)?.holders[0];
  assert.equal(h?.state, 'RUNNING, Query');
  assert.equal(h?.query, 'LOCK TABLES t WRITE');
  assert.equal(h?.lock, 'X,REC_NOT_GAP table lock on shop.t');
});

test('the report groups holders by our route, else by the outside application, client or user', () => {
  assert.deepEqual(holderGroup({ serverId: 1, ours: { workerPid: 1, method: 'POST', url: '/users/42/pay?x=1' } }), { label: 'POST /users/:id/pay', ours: true });
  assert.deepEqual(holderGroup({ serverId: 1, application: 'psql', user: 'ops' }), { label: 'application psql (user ops)', ours: false });
  assert.deepEqual(holderGroup({ serverId: 1, client: '10.0.0.7:5432', user: 'batch' }), { label: 'client 10.0.0.7 (user batch)', ours: false });
  assert.deepEqual(holderGroup(undefined), { label: 'holder not identified', ours: false });
});

function handle(id: number, pid: number, db: Array<{ serverId: number; requestId?: number; method?: string; url?: string; startedAt?: number }>): WorkerHandle {
  return {
    id, pid, alive: true, channel: undefined,
    heartbeat: { db: db.map((s) => ({ kind: 'postgres', ...s })) },
  } as unknown as WorkerHandle;
}

function captureWith(waits: LockWait[]): Capture {
  return { complete: true, elapsedMs: 1, loop: { blocked: false, blockedForMs: 0 }, inflight: [{ id: 7, method: 'GET', url: '/wait', startedAt: 0, ageMs: 1 }], locks: { waits } };
}

test('the master names a holder on another worker and dumps it once, whatever the number of waiters', async () => {
  const waiter = handle(1, 101, []);
  const holder = handle(2, 202, [{ serverId: 555, requestId: 9, method: 'GET', url: '/hold', startedAt: Date.now() - 2000 }]);
  const dumps: DumpRequest[] = [];
  const names = new LockHolders({
    workers: () => [waiter, holder],
    dump: async (_h, req) => { dumps.push(req); return `/dumps/holder-${dumps.length}.json`; },
    dumpTimeout: () => 1000,
  });
  for (let i = 0; i < 10; i++) {
    const cap = captureWith([wait({ serverId: 10 + i, chain: [{ serverId: 555, state: 'idle in transaction', txAgeMs: 2000 }] })]);
    await names.name(waiter, { reason: 'slow', summary: '', kill: false }, cap);
    const h = cap.locks!.waits[0]!.chain[0]!;
    assert.equal(h.ours?.workerPid, 202);
    assert.equal(h.ours?.url, '/hold');
    assert.equal(h.ours?.dump, '/dumps/holder-1.json', 'later waiters point at the one holder dump');
    assert.match(cap.locks!.waits[0]!.sentence, /^blocked by 555 \(worker 202 GET \/hold \(request 9, [\d.]+ s\), idle in transaction/);
  }
  assert.equal(dumps.length, 1, 'one holder dump for ten waiters');
  assert.match(dumps[0]!.summary, /^GET \/hold \(request 9\) on worker 2 \(pid 202\) holds a lock that 1 request waits on: GET \/wait on worker 1/);
  assert.equal(dumps[0]!.blocks?.[0]?.workerPid, 101);
  assert.equal(dumps[0]!.holderDump, true);
  // A holder's own dump names no holders in turn.
  const cap = captureWith([wait({ chain: [{ serverId: 555 }] })]);
  await names.name(holder, { reason: 'slow', summary: '', kill: false, holderDump: true }, cap);
  assert.equal(dumps.length, 1);
});

test('holder dumps are capped per window across holders', async () => {
  const waiter = handle(1, 101, []);
  const sessions = Array.from({ length: 20 }, (_, i) => ({ serverId: 1000 + i, requestId: i, method: 'GET', url: `/h${i}` }));
  const holder = handle(2, 202, sessions);
  let n = 0;
  const names = new LockHolders({ workers: () => [waiter, holder], dump: async () => `/d${++n}`, dumpTimeout: () => 1000 });
  for (const s of sessions) await names.name(waiter, { reason: 'slow', summary: '', kill: false }, captureWith([wait({ chain: [{ serverId: s.serverId }] })]));
  assert.equal(n, MAX_HOLDER_DUMPS);
});
