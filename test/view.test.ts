// The dump viewers on synthetic dumps: what `superv dumps` and `superv dumps show` print, and that nothing a
// dump carries (URLs, locals, SQL) can inject terminal escapes or break the viewer.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runDumps, type CommandIO } from '../src/commands/dumps';
import type { Dump } from '../src/dump/types';
import { renderDumpHtml } from '../src/reader/dump-html';
import { renderDumpList, renderDumpText, summarizeDump } from '../src/reader/dump-text';
import { blockedIn, frameLabel, fsSourceReader, sourceExcerpt, stateBlocks } from '../src/reader/facts';
import { clean, duration, style, wantColor } from '../src/reader/format';
import { coerceDump, loadDumps, parseDump, type LoadedDump } from '../src/reader/load';
import { dumpFileName } from '../src/dump/files';
import { rmrf, tempDir } from './helpers';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmrf(d); });
function dir(): string {
  const d = tempDir('superv-view-');
  dirs.push(d);
  return d;
}

const ESC = '\x1b';

/** A timeout dump of an app at <root>/app.js whose top frame is `rankUsers` in <root>/src/rank.js:5. */
function synthetic(root: string, over: Partial<Dump> = {}): Dump {
  return {
    version: 1, reason: 'timeout', time: '2026-11-28T10:00:00.000Z',
    summary: 'the event loop of worker 1 (pid 4242) has been blocked for 30.0 s (timeout 30s); the worker was killed and replaced',
    supervisor: { name: 'shop', pid: 4000, app: join(root, 'app.js'), host: 'web-1' },
    worker: { id: 1, pid: 4242, uptimeMs: 3_600_000, served: 1234 },
    request: { id: 7, method: 'GET', url: '/users/42/rank?page=2', startedAt: Date.parse('2026-11-28T09:59:30.000Z'), ageMs: 30_000, remote: '10.0.0.9:5555', headers: { host: 'shop.example' } },
    capture: {
      complete: true, elapsedMs: 90, loop: { blocked: true, blockedForMs: 30_000 },
      inflight: [{ id: 7, method: 'GET', url: '/users/42/rank?page=2', startedAt: 0, ageMs: 30_000 }],
      stack: [
        { function: 'compare', file: join(root, 'node_modules/sorty/index.js'), line: 3, column: 1, app: false },
        { function: 'rankUsers', file: join(root, 'src/rank.js'), line: 5, column: 3, app: true,
          locals: { users: { type: 'array', value: 'Array(50000)' }, threshold: { type: 'number', value: '0.5' } } },
        { function: 'handler', file: join(root, 'app.js'), line: 10, column: 5, app: true, locals: {} },
        { function: 'emit', file: 'node:events', line: 519, column: 28, app: false, locals: { kCapture: { type: 'symbol', value: 'Symbol(kCapture)' } } },
      ],
      heap: { used_heap_size: 50 * 2 ** 20, total_heap_size: 80 * 2 ** 20, heap_size_limit: 4 * 2 ** 30 },
      state: {
        db: [
          { ageMs: 1200, sql: 'SELECT * FROM users WHERE id = $1', pid: 77, client: 'pg' },
          { ageMs: 15, sql: 'COMMIT', pid: 78, client: 'pg' },
        ],
        outbound: { pending: [{ request: 'GET https://api.example/prices', ageMs: 900 }], pool: { sockets: 3, free: 0 } },
      },
    },
    master: {
      cpuPercent: 99.5, rss: 200 * 2 ** 20,
      proc: { state: 'R', syscall: 'running', syscallName: 'running', children: [], tcp: [{ local: '127.0.0.1:3000', remote: '10.0.0.9:5555', state: 'ESTABLISHED', rxQueue: 0, txQueue: 0 }] },
      lastHeartbeat: { ageMs: 30_100, inflight: 1, oldest: [] },
    },
    action: 'killed',
    ...over,
  };
}

/** Writes the app's source files so the viewer can show lines around the running one. */
function appTree(root: string): void {
  mkdirSync(join(root, 'src'), { recursive: true });
  writeFileSync(join(root, 'src/rank.js'), ['// rank', 'function rankUsers(users, threshold) {', '  let out = [];', '  const apiKey = "sk-should-not-show";',
    '  for (const u of users) out = out.concat(users.filter((v) => v.score > u.score * threshold));', '  return out;', '}', 'module.exports = { rankUsers };', ''].join('\n'));
  writeFileSync(join(root, 'app.js'), '// app\n');
  // Older than the dumps, so no "changed after the dump" note unless a test asks for one.
  utimesSync(join(root, 'src/rank.js'), new Date('2026-01-01'), new Date('2026-01-01'));
}

function loaded(root: string, d: Dump): LoadedDump {
  return { name: dumpFileName(d), path: join(root, dumpFileName(d)), dump: d };
}

function io(env: NodeJS.ProcessEnv = {}, cwd = '/'): CommandIO & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return {
    out: { write: (s: string) => { out += s; return true; } }, err: { write: (s: string) => { err += s; return true; } },
    env: { SUPERV_RUN_DIR: join(cwd, 'no-run-dir'), ...env }, cwd, stdout: () => out, stderr: () => err,
  };
}

describe('format', () => {
  test('clean() makes control characters visible and bounds the length', () => {
    assert.equal(clean(`a${ESC}[2Jb\u202ec\nd`), 'a\\x1b[2Jb\\u202ec\\x0ad');
    assert.equal(clean('x'.repeat(10), 5), 'xxxx…');
    assert.equal(clean(42), '42');
  });

  test('durations read naturally', () => {
    assert.equal(duration(850), '850 ms');
    assert.equal(duration(2030), '2.03 s');
    assert.equal(duration(90_000), '1.5 min');
    assert.equal(duration(undefined), '-');
  });

  test('colors: TTY or FORCE_COLOR, never with NO_COLOR', () => {
    assert.equal(wantColor({ isTTY: true }, {}), true);
    assert.equal(wantColor({ isTTY: false }, {}), false);
    assert.equal(wantColor({}, { FORCE_COLOR: '1' }), true);
    assert.equal(wantColor({ isTTY: true }, { FORCE_COLOR: '0' }), false);
    assert.equal(wantColor({ isTTY: true }, { NO_COLOR: '1', FORCE_COLOR: '1' }), false);
  });
});

describe('reading dumps', () => {
  test('coerceDump keeps what has the right shape and drops the rest', () => {
    const d = coerceDump({
      version: 1, reason: 'slow', time: '2026-11-28T10:00:00.000Z', summary: 5, supervisor: 'nope', worker: { id: '1', pid: 9 },
      request: { url: '/a', method: 'POST', headers: { a: 1 } }, master: null, action: 'exploded',
      capture: { stack: [{ function: 'f', file: '/x.js', line: 'ten', app: true, locals: { ['__proto__']: { type: 'string', value: 'v' } } }, 'junk'], state: { db: [] } },
    });
    assert.equal(d.summary, '5');
    assert.equal(d.supervisor.name, '?');
    assert.equal(d.worker.id, 0);
    assert.equal(d.worker.pid, 9);
    assert.equal(d.request?.headers?.a, '1');
    assert.equal(d.action, 'none');
    assert.deepEqual(d.master.proc, {});
    assert.equal(d.capture?.stack?.length, 1);
    assert.equal(d.capture?.stack?.[0]?.line, 0);
    // JSON.parse makes `__proto__` an own key; it must stay a local, not become the record's prototype.
    const parsed = parseDump(JSON.stringify({ version: 1, reason: 'slow', time: 't', capture: { stack: [{ locals: JSON.parse('{"__proto__":{"type":"string","value":"v"}}') as unknown }] } }));
    assert.deepEqual(Object.keys(parsed.capture!.stack![0]!.locals!), ['__proto__']);
  });

  test('what is not a dump is refused with a reason', () => {
    assert.throws(() => parseDump('{'), /not JSON/);
    assert.throws(() => parseDump('{"hello":1}'), /not a superv dump/);
    assert.throws(() => parseDump('{"version":99,"reason":"slow","time":"t"}'), /newer/);
  });

  test('loadDumps skips unreadable files with a note and filters by supervisor name', async () => {
    const root = dir();
    const a = synthetic(root);
    const b = synthetic(root, { supervisor: { ...a.supervisor, name: 'other' }, time: '2026-11-28T11:00:00.000Z' });
    for (const d of [a, b]) writeFileSync(join(root, dumpFileName(d)), JSON.stringify(d));
    writeFileSync(join(root, '2026-11-28T12-00-00.000Z-shop-w1-1-slow.json'), '{ truncated');
    writeFileSync(join(root, 'notes.json'), '{}');
    const all = await loadDumps(root);
    assert.equal(all.dumps.length, 2);
    assert.equal(all.problems.length, 1);
    assert.match(all.problems[0]!, /slow\.json: not JSON/);
    assert.deepEqual((await loadDumps(root, 'other')).dumps.map((d) => d.dump.supervisor.name), ['other']);
  });
});

describe('what a dump means', () => {
  test('the top app frame is labelled with its path relative to the app', () => {
    const root = '/srv/shop';
    const d = synthetic(root);
    assert.equal(blockedIn(d), 'rankUsers src/rank.js:5');
    const mapped = { ...d.capture!.stack![1]!, original: { file: 'file:///srv/shop/src/rank.ts', line: 12, column: 2, name: 'rankUsersTs' } };
    assert.equal(frameLabel(mapped, d.supervisor.app), 'rankUsersTs src/rank.ts:12', 'the source-mapped location wins');
    assert.equal(frameLabel({ ...mapped, original: undefined, file: '/elsewhere/x.js' }, d.supervisor.app), 'rankUsers /elsewhere/x.js:5');
  });

  test('without an app frame it says why: I/O wait, or native code and what the kernel shows', () => {
    const root = '/srv/shop';
    const base = synthetic(root);
    const io1 = synthetic(root, { capture: { ...base.capture!, loop: { blocked: false, blockedForMs: 0 }, stack: undefined } });
    assert.equal(blockedIn(io1), '(awaiting I/O, loop free)');
    const native = synthetic(root, { capture: undefined, master: { proc: { state: 'S', wchan: 'do_wait', children: [{ pid: 9, cmdline: 'sleep 30' }] } } });
    assert.equal(blockedIn(native), '(native: child "sleep 30")');
    const bare = synthetic(root, { capture: undefined, master: { proc: { syscallName: 'epoll_wait' } } });
    assert.equal(blockedIn(bare), '(native: epoll_wait)');
  });

  test('awaiting I/O: the request\'s oldest pending statement or outbound call names the app line and what it awaited', () => {
    const root = '/srv/shop';
    const base = synthetic(root);
    const free = { ...base.capture!, loop: { blocked: false, blockedForMs: 0 }, stack: undefined };
    const site = (fn: string, file: string, line: number, app = true) => ({ function: fn, file: join(root, file), line, column: 3, app });
    const db = {
      connections: [
        { driver: 'pg', pending: [{ state: 'running', ageMs: 900, sql: 'SELECT   pg_sleep(5), balance FROM accounts WHERE id = $1 AND frozen = false', request: { id: 7 }, site: site('loadRank', 'src/rank.js', 12) }] },
        { driver: 'pg', pending: [{ state: 'running', ageMs: 5000, sql: 'SELECT 1', request: { id: 8 }, site: site('other', 'src/other.js', 1) }] },
      ],
      pools: [],
    };
    const sql = synthetic(root, { capture: { ...free, state: { db } } });
    assert.equal(blockedIn(sql), 'loadRank src/rank.js:12 awaiting SQL `SELECT pg_sleep(5), balance FROM accounts WHERE…`');
    const outbound = { pending: [{ kind: 'fetch', method: 'GET', origin: 'https://api.example', path: '/prices?key=1', ageMs: 2000, request: { id: 7 }, site: site('fetchPrices', 'src/prices.js', 4) }] };
    assert.equal(blockedIn(synthetic(root, { capture: { ...free, state: { db, outbound } } })), 'fetchPrices src/prices.js:4 awaiting GET https://api.example/prices', 'the oldest wait wins');
    const noApp = { connections: [{ pending: [{ ageMs: 900, sql: 'select 1', request: { id: 7 }, site: site('query', 'node_modules/knex/lib/x.js', 9, false) }] }] };
    assert.equal(blockedIn(synthetic(root, { capture: { ...free, state: { db: noApp } } })), '(no app frame; GET /users/:id/rank) awaiting SQL `select 1`');
    const waiter = { connections: [], pools: [{ driver: 'mariadb', waiters: [{ ageMs: 300, what: 'connection checkout', request: { id: 7 }, site: site('handler', 'app.js', 10) }] }] };
    assert.equal(blockedIn(synthetic(root, { capture: { ...free, state: { db: waiter } } })), 'handler app.js:10 awaiting a mariadb pool connection');
    assert.equal(blockedIn(synthetic(root, { capture: { ...free, state: { db: { connections: db.connections.slice(1) } } } })), '(awaiting I/O, loop free)', 'another request\'s statement is not ours');
  });

  test('providers\' state: arrays of objects become tables with age and SQL first; objects become fields', () => {
    const blocks = stateBlocks(synthetic('/r').capture!.state);
    const db = blocks.find((b) => b.title === 'db');
    assert.ok(db && db.kind === 'table');
    assert.deepEqual(db.columns.slice(0, 2), ['ageMs', 'sql']);
    assert.deepEqual(db.rows[0]!.slice(0, 2), ['1.20 s', 'SELECT * FROM users WHERE id = $1']);
    const pending = blocks.find((b) => b.title === 'outbound.pending');
    assert.ok(pending && pending.kind === 'table');
    assert.deepEqual(pending.columns, ['ageMs', 'request']);
    const pool = blocks.find((b) => b.title === 'outbound.pool');
    assert.ok(pool && pool.kind === 'fields');
    assert.deepEqual(pool.fields, [['sockets', '3'], ['free', '0']]);
    assert.deepEqual(stateBlocks({ weird: 'just text', none: [] }).map((b) => b.kind), ['fields', 'fields']);
  });

  test('source lines around the running line, redacted, with a note when the file changed after the dump', () => {
    const root = dir();
    appTree(root);
    const d = synthetic(root);
    const ex = sourceExcerpt(d.capture!.stack![1]!, fsSourceReader(), d.time)!;
    assert.equal(ex.line, 5);
    assert.deepEqual(ex.lines.map((l) => l.n), [2, 3, 4, 5, 6, 7, 8]);
    assert.match(ex.lines.find((l) => l.n === 5)!.text, /users\.filter/);
    assert.ok(!ex.lines.some((l) => l.text.includes('sk-should-not-show')), 'a secret literal next to the line is redacted');
    assert.equal(ex.note, undefined);
    utimesSync(join(root, 'src/rank.js'), new Date(), new Date());
    assert.match(sourceExcerpt(d.capture!.stack![1]!, fsSourceReader(), d.time)!.note!, /changed after the dump/);
    // Only source files are read: a crafted dump cannot make the viewer print arbitrary files.
    writeFileSync(join(root, 'secret.txt'), 'a\nb\nc\n');
    assert.equal(sourceExcerpt({ ...d.capture!.stack![1]!, file: join(root, 'secret.txt'), line: 2 }, fsSourceReader(), d.time), undefined);
  });
});

describe('the terminal view', () => {
  test('show: what happened, the request, the running line with its source, the stack, locals, state, /proc', () => {
    const root = dir();
    appTree(root);
    const text = renderDumpText(loaded(root, synthetic(root)), { style: style(false), read: fsSourceReader() });
    assert.ok(!text.includes(ESC), 'no colors when not asked for');
    const order = ['timeout: event loop blocked past the timeout — worker killed', 'Request', 'GET /users/42/rank?page=2',
      'route /users/:id/rank', 'Where', 'rankUsers at src/rank.js:5:3', '>', 'users.filter', 'Stack', 'Locals of rankUsers',
      'threshold', 'State', 'SELECT * FROM users WHERE id = $1', 'Memory', 'Master view (/proc)', 'R (running)', '127.0.0.1:3000 ⇄ 10.0.0.9:5555'];
    let at = 0;
    for (const s of order) {
      const i = text.indexOf(s, at);
      assert.ok(i >= 0, `${JSON.stringify(s)} after offset ${at} in:\n${text}`);
      at = i;
    }
    assert.match(text, /^> {1,2}5 │ .*users\.filter/m, 'the running line is marked');
    assert.ok(!text.includes('kCapture'), 'locals of node internals are hidden by default');
    assert.match(text, /locals of 1 node-internal frame\(s\) hidden/);
    const all = renderDumpText(loaded(root, synthetic(root)), { style: style(false), read: fsSourceReader(), allLocals: true });
    assert.ok(all.includes('kCapture'));
  });

  test('previews of big values: the size where the description lacks it, and what was not read, per scope', () => {
    const root = dir();
    const d = synthetic(root);
    const f = d.capture!.stack![1]!;
    f.locals = {
      ...f.locals,
      byId: { type: 'map', value: 'Map(1000000)', size: 1_000_000, props: { '"u1"': 'User', '…': 'more not shown' } },
      index: { type: 'object', value: 'Index', size: 50_000, props: { p0: '0', '…': 'more not shown' } },
    };
    f.localsMissing = ['closure scope: not read by the deadline'];
    // Through JSON and the loader, as a dump on disk is read.
    const parsed = parseDump(JSON.stringify(d));
    assert.equal(parsed.capture!.stack![1]!.locals!['index']!.size, 50_000);
    assert.deepEqual(parsed.capture!.stack![1]!.localsMissing, ['closure scope: not read by the deadline']);
    const text = renderDumpText(loaded(root, parsed), { style: style(false), read: () => undefined });
    assert.match(text, /byId +map +Map\(1000000\) \{ "u1": User, …: more not shown \}/);
    assert.match(text, /index +object +Index \(50000 properties\)/);
    assert.match(text, /not read: closure scope: not read by the deadline/);
    const html = renderDumpHtml(loaded(root, parsed), { id: 'd1', read: () => undefined });
    assert.ok(html.includes('Index (50000 properties)'), 'the HTML view shows the size too');
    assert.ok(html.includes('not read: closure scope: not read by the deadline'));
  });

  test('with colors: app frames bold, node internals dim, killed in red', () => {
    const root = dir();
    const text = renderDumpText(loaded(root, synthetic(root)), { style: style(true), read: () => undefined });
    assert.ok(text.startsWith(`${ESC}[1m${ESC}[31mtimeout`), JSON.stringify(text.slice(0, 30)));
    assert.match(text, new RegExp(`${ESC}\\[1mrankUsers${ESC}\\[22m`));
    assert.match(text, new RegExp(`${ESC}\\[2memit${ESC}\\[22m`));
  });

  test('escape sequences in a URL, a header, a local or SQL reach the terminal inert', () => {
    const root = dir();
    const evil = `${ESC}]0;pwned${ESC}\\${ESC}[2J`;
    const base = synthetic(root);
    const d = synthetic(root, {
      request: { ...base.request!, url: `/x${evil}`, headers: { [`h${evil}`]: evil } },
      capture: { ...base.capture!, state: { db: [{ sql: `SELECT '${evil}'`, ageMs: 1 }] },
        stack: [{ ...base.capture!.stack![1]!, function: `f${evil}`, locals: { [`v${evil}`]: { type: 'string', value: evil } } }] },
    });
    for (const text of [renderDumpText(loaded(root, d), { style: style(false), read: () => undefined }), renderDumpList([loaded(root, d)], style(false))]) {
      assert.ok(!text.includes(ESC), JSON.stringify(text));
      assert.ok(text.includes('\\x1b]0;pwned'), 'visible instead');
    }
  });

  test('the list: time, reason, route, worker, top frame, file; --json summaries', () => {
    const root = '/srv/shop';
    const a = loaded(root, synthetic(root));
    const b = loaded(root, synthetic(root, { reason: 'slow', action: 'none', time: '2026-11-28T10:05:00.000Z', request: { ...synthetic(root).request!, url: '/cart' } }));
    const lines = renderDumpList([a, b], style(false)).trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^TIME +HOST +REASON +ROUTE +WORKER +WHERE +FILE$/);
    assert.match(lines[1]!, /timeout\/killed +GET \/users\/:id\/rank +w1 4242 +rankUsers src\/rank\.js:5 +2026-11-28T10-00-00\.000Z-shop-w1-4242-timeout\.json/);
    assert.match(lines[2]!, /slow +GET \/cart/);
    const s = summarizeDump(a);
    assert.equal(s.route, '/users/:id/rank');
    assert.equal(s.where, 'rankUsers src/rank.js:5');
  });
});

describe('superv dumps (command)', () => {
  function fill(root: string): Dump[] {
    const ds = [synthetic(root), synthetic(root, { reason: 'slow', action: 'none', time: '2026-11-28T10:05:00.000Z' })];
    for (const d of ds) writeFileSync(join(root, dumpFileName(d)), JSON.stringify(d, null, 2));
    return ds;
  }

  test('lists a --dir, oldest first; --json; NAME filters', async () => {
    const root = dir();
    fill(root);
    const t = io();
    assert.equal(await runDumps(['--dir', root], t), 0);
    const rows = t.stdout().trimEnd().split('\n');
    assert.equal(rows.length, 3);
    assert.match(rows[1]!, /timeout\/killed/);
    assert.match(rows[2]!, /slow/);
    const j = io();
    await runDumps([`--dir=${root}`, '--json'], j);
    const list = JSON.parse(j.stdout()) as Array<{ reason: string; where: string; file: string }>;
    assert.deepEqual(list.map((x) => x.reason), ['timeout', 'slow']);
    const none = io();
    await runDumps(['nobody', '--dir', root], none);
    assert.match(none.stdout(), /no dumps of nobody in /);
  });

  test('the default dir is $SUPERV_DUMP_DIR, else ./superv-dumps; a missing one is a clear error', async () => {
    const cwd = dir();
    mkdirSync(join(cwd, 'superv-dumps'));
    fill(join(cwd, 'superv-dumps'));
    const t = io({}, cwd);
    await runDumps([], t);
    assert.match(t.stdout(), /rankUsers src\/rank\.js:5/);
    await assert.rejects(runDumps([], io({ SUPERV_DUMP_DIR: 'elsewhere' }, cwd)), (e: Error) => {
      assert.match(e.message, /elsewhere \(\$SUPERV_DUMP_DIR\) is not a directory/);
      return true;
    });
    await assert.rejects(runDumps(['--bogus'], io({}, cwd)), /unknown option --bogus/);
    await assert.rejects(runDumps(['--dir'], io({}, cwd)), /--dir: it needs a value/);
  });

  test('show latest / FILE / --json', async () => {
    const root = dir();
    appTree(root);
    const [first, second] = fill(root);
    const t = io();
    await runDumps(['show', 'latest', '--dir', root], t);
    assert.match(t.stdout(), /^slow: slow request/, 'latest is the newest');
    const f = io();
    await runDumps(['show', dumpFileName(first!), '--dir', root], f);
    assert.match(f.stdout(), /^timeout/);
    assert.match(f.stdout(), /users\.filter/);
    const j = io();
    await runDumps(['show', join(root, dumpFileName(second!)), '--json'], j);
    assert.equal((JSON.parse(j.stdout()) as Dump).reason, 'slow');
    await assert.rejects(runDumps(['show', 'nope.json', '--dir', root], io()), /no dump nope\.json/);
    await assert.rejects(runDumps(['show'], io()), /superv dumps show FILE\|latest/);
    const empty = dir();
    await assert.rejects(runDumps(['show', 'latest', '--dir', empty], io()), /no dumps in/);
  });

  test('an unreadable dump is skipped with a note on stderr; the others are listed', async () => {
    const root = dir();
    fill(root);
    const bad = join(root, '2026-11-28T09-00-00.000Z-shop-w1-1-timeout.json');
    writeFileSync(bad, '{}');
    chmodSync(bad, 0o600);
    const t = io();
    await runDumps(['--dir', root], t);
    assert.match(t.stderr(), /skipped 2026-11-28T09-00-00\.000Z-shop-w1-1-timeout\.json: not a superv dump/);
    assert.equal(t.stdout().trimEnd().split('\n').length, 3);
  });
});

test('thousands in flight: text and HTML show the total, the oldest listed, and the rest per route; old dumps still read', () => {
  const root = dir();
  const base = synthetic(root);
  const d = synthetic(root, {
    capture: { ...base.capture!, inflightMore: { count: 4_812, byRoute: [{ route: '/poll', count: 4_800 }, { route: '/', count: 12 }] },
      inflight: [{ id: 7, method: 'GET', url: '/events', startedAt: 0, ageMs: 30_000, lastWriteMs: 200 }] },
  });
  const text = renderDumpText(loaded(root, coerceDump(JSON.parse(JSON.stringify(d)))), { style: style(false), read: () => undefined });
  assert.match(text, /In flight \(4,813, the oldest 1 listed\)/);
  assert.match(text, /last write 200 ms ago/);
  assert.match(text, /^ {2}4,812 more: \/poll 4,800, \/ 12$/m);
  const html = renderDumpHtml(loaded(root, d), { id: 'x', read: () => undefined });
  assert.match(html, /4,812 more: \/poll 4,800, \/ 12/);
  // A dump written before the per-route counts carried only a number.
  const old = JSON.parse(JSON.stringify(base)) as Record<string, Record<string, unknown>>;
  old.capture!.inflightOverflow = 40;
  assert.deepEqual(coerceDump(old).capture?.inflightMore, { count: 40, byRoute: [] });
  assert.match(renderDumpText(loaded(root, coerceDump(old)), { style: style(false), read: () => undefined }), /40 more$/m);
});
