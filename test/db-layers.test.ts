// SQL forensics through the drivers and the query builders / ORMs apps use, end to end: the real CLI, one
// worker, real PostgreSQL and MariaDB. Each route of test/fixtures/layers-app.js runs one slow statement
// (pg_sleep / SLEEP) through one library, loaded lazily inside its first request; its slow dump must show
// the statement, its request, and the app function that awaited it (not the library's internals), and
// `superv dumps` must say so on the request's line.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from 'pg';
import type { Dump } from '../src/dump/types';
import type { DbState, StatementJson } from '../src/worker/instrument';
import { blockedIn } from '../src/reader/facts';
import { CLI, FIXTURES, get, killAll, startSuperv, type Reply } from './helpers';

const APP = join(FIXTURES, 'layers-app.js');

interface Layer {
  /** The route, and the layer's key in the fixture. */
  name: string;
  /** The driver underneath, as the dump names it. */
  driver: 'pg' | 'postgres' | 'mysql2' | 'mariadb';
  /** The app function that awaited the statement. */
  fn: string;
  /**
   * Loaded (lazily, inside a request of its own) before the slow request: a query builder or ORM can take
   * longer to load and connect than --slow on a loaded machine, and the one slow dump would come too early.
   * The drivers load inside their slow request; the first of them turns request tracking on mid-request.
   */
  warm?: true;
}

const LAYERS: Layer[] = [
  { name: 'pg', driver: 'pg', fn: 'pgReport' },
  { name: 'postgres', driver: 'postgres', fn: 'postgresReport' },
  { name: 'mysql2', driver: 'mysql2', fn: 'mysql2Report' },
  { name: 'mariadb', driver: 'mariadb', fn: 'mariadbReport' },
  { name: 'knex', driver: 'pg', fn: 'knexReport', warm: true },
  { name: 'sequelize', driver: 'mysql2', fn: 'sequelizeReport', warm: true },
  { name: 'kysely', driver: 'pg', fn: 'kyselyReport', warm: true },
  { name: 'typeorm', driver: 'pg', fn: 'typeormReport', warm: true },
  { name: 'drizzle-pg', driver: 'pg', fn: 'drizzlePgReport', warm: true },
  { name: 'drizzle-postgres', driver: 'postgres', fn: 'drizzlePostgresReport', warm: true },
];

const admin = new Client({ host: '127.0.0.1', user: 'postgres', database: 'test' });

before(async () => {
  await admin.connect();
  await admin.query('CREATE TABLE IF NOT EXISTS i20_layers (id int PRIMARY KEY)');
  await admin.query('INSERT INTO i20_layers VALUES (1) ON CONFLICT DO NOTHING');
});
after(async () => {
  await killAll();
  await admin.end();
});

/** The pending statement the layer's request is waiting on, with the connection it runs on. */
function pendingFor(d: Dump, layer: Layer): { stmt: StatementJson; driver: string } | undefined {
  const db = (d.capture?.state as { db?: DbState } | undefined)?.db;
  for (const c of db?.connections ?? []) {
    const stmt = c.pending.find((p) => p.sql !== undefined && new RegExp(`i20_${layer.name.replace('-', '_')}`).test(p.sql));
    if (stmt) return { stmt, driver: c.driver };
  }
  return undefined;
}

test('a slow statement through each driver and layer: its dump names the statement, the request and the app function', async (t) => {
  const { s, port, dir } = await startSuperv(APP, ['-w', '1', '--slow', '2s', '--timeout', '60s'], { env: { SLEEP_S: '6' } });
  const replies: Array<Promise<Reply>> = [];
  try {
    for (const layer of LAYERS) {
      await t.test(layer.name, async () => {
        const url = `/${layer.name}`;
        if (layer.warm) assert.equal((await get(port, `${url}?warm`, { timeoutMs: 60_000 })).status, 200);
        replies.push(get(port, url, { timeoutMs: 60_000 }));
        const [written] = await s.waitEvent('dump-written', 1, 30_000, (l) => l.reason === 'slow' &&
          (JSON.parse(readFileSync(l.file as string, 'utf8')) as Dump).request?.url === url);
        // A warm-up request's own dump (it may pass --slow too) is not this one: the url differs.
        const d = JSON.parse(readFileSync(written!.file as string, 'utf8')) as Dump;
        const found = pendingFor(d, layer);
        assert.ok(found, `the statement is listed: ${JSON.stringify((d.capture?.state as { db?: unknown })?.db).slice(0, 3000)}`);
        assert.equal(found.driver, layer.driver);
        assert.equal(found.stmt.request?.url, url, 'attributed to its request, though the library was loaded inside it');
        assert.equal(found.stmt.site?.function, layer.fn, `the app function: ${JSON.stringify(found.stmt.site)}`);
        assert.equal(found.stmt.site?.file, APP);
        assert.equal(found.stmt.site?.app, true);
        assert.match(blockedIn(d), new RegExp(`^${layer.fn} layers-app\\.js:\\d+ awaiting SQL \``), 'what `superv dumps` shows');
      });
    }
    for (const r of await Promise.all(replies)) assert.equal(r.status, 200, r.body);
    const list = execFileSync(process.execPath, [CLI, 'dumps', '--dir', dir], { encoding: 'utf8' });
    for (const layer of LAYERS) {
      // The last line of the route: a warm-up request (same route) may have its own dump before it.
      const line = list.split('\n').filter((l) => l.includes(`/${layer.name} `)).pop();
      assert.ok(line?.includes(`${layer.fn} layers-app.js:`), `superv dumps: ${line}`);
      t.diagnostic(`${layer.name.padEnd(17)} ${line?.replace(/\s+\S+\.json\s*$/, '').trim()}`);
    }
  } finally {
    await s.kill();
  }
});
