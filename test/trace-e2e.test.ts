// Trace ids from the request to the page, and one report across hosts, end to end: a real supervisor runs an
// app traced with @opentelemetry/api (test/fixtures/otel-app.js); requests carry W3C traceparent headers (one
// well-formed, two malformed, one of them markup); one request blocks its worker inside an OpenTelemetry span
// and the worker is dumped and killed. The dump, `superv dumps`, `dumps show`, `report` and the HTML report
// must show the trace ids (linked through trace_url), never the malformed headers. Then the dump dir is
// merged with a second host's dir, a glob and a missing dir, through the real CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { Dump } from '../src/dump/types';
import { CLI, FIXTURES, get, killAll, rmrf, startSuperv, tempDir, type Superv } from './helpers';

const run = promisify(execFile);
const APP = join(FIXTURES, 'otel-app.js');
const NAME = 'tracee2e';
const TRACE_URL = 'https://traces.example/trace/{trace_id}?span={span_id}';
/** In flight on the worker when it is killed, with a well-formed header. */
const WAITING = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
/** The stuck request: its header names one trace, the app's OpenTelemetry span another; the span wins. */
const STUCK_HEADER = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const STUCK_SPAN = { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174' };
/** Malformed: uppercase hex (the spec says lowercase), and markup of the right length. */
const UPPER = `00-${WAITING.traceId.toUpperCase()}-${WAITING.spanId.toUpperCase()}-01`;
const MARKUP = '00-<script>alert(1)</script>"><img src=x onerror=alert(2)>-01';

const dirs: string[] = [];
let s: Superv;
let dir = '';
let dumpFile = '';
let dump: Dump;

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, NO_COLOR: '1', SUPERV_RUN_DIR: tempDir('superv-run-'), ...env }, maxBuffer: 16 * 2 ** 20 })
    .then((r) => ({ ...r, code: 0 }), (e: { stdout: string; stderr: string; code: number }) => ({ stdout: e.stdout, stderr: e.stderr, code: e.code }));
}

before(async () => {
  const started = await startSuperv(APP, ['--name', NAME, '-w', '1', '--timeout', '3s', '--dump-timeout', '3s', '--slow', '0', '--trace-url', TRACE_URL]);
  s = started.s;
  dir = started.dir;
  dirs.push(dir, started.runDir);
  const p = started.port;
  const waits = [
    get(p, '/wait?ms=60000&n=good', { timeoutMs: 60000, headers: { traceparent: `00-${WAITING.traceId}-${WAITING.spanId}-01` } }),
    get(p, '/wait?ms=60000&n=upper', { timeoutMs: 60000, headers: { traceparent: UPPER } }),
    get(p, '/wait?ms=60000&n=markup', { timeoutMs: 60000, headers: { traceparent: MARKUP } }),
  ].map((r) => r.catch((e: Error) => e));
  await s.waitInflight(3);
  const stuck = get(p, `/spin?ms=60000&trace=${STUCK_SPAN.traceId}&span=${STUCK_SPAN.spanId}`, { timeoutMs: 60000, headers: { traceparent: STUCK_HEADER } })
    .catch((e: Error) => e);
  const [written] = await s.waitEvent('dump-written', 1, 30000, (l) => l.reason === 'timeout');
  dumpFile = String(written!.file);
  dump = JSON.parse(readFileSync(dumpFile, 'utf8')) as Dump;
  await Promise.all([stuck, ...waits]);
}, { timeout: 60000 });

after(async () => {
  await killAll();
  for (const d of dirs) rmrf(d);
});

describe('trace ids in a dump', () => {
  test('the stuck request carries its OpenTelemetry span; the one in flight its traceparent; malformed ones nothing', () => {
    assert.equal(dump.request?.url.startsWith('/spin'), true, JSON.stringify(dump.request));
    assert.deepEqual(dump.request?.trace, { ...STUCK_SPAN, from: 'otel' });
    const byN = (n: string) => dump.capture!.inflight.find((r) => r.url.includes(`n=${n}`));
    assert.deepEqual(byN('good')?.trace, { ...WAITING, from: 'traceparent' });
    assert.equal(byN('upper')?.trace, undefined);
    assert.equal(byN('markup')?.trace, undefined);
    assert.deepEqual(dump.collateral?.find((r) => r.url.includes('n=good'))?.trace, { ...WAITING, from: 'traceparent' });
    assert.ok(!readFileSync(dumpFile, 'utf8').includes('<script>'), 'the malformed header is not in the dump');
  });

  test('every dump records its host name and the trace_url it was written with', () => {
    assert.equal(dump.supervisor.host, hostname());
    assert.equal(dump.supervisor.traceUrl, TRACE_URL);
  });

  test('superv dumps: a TRACE column; --json: host and trace id', async () => {
    const list = await cli(['dumps', '--dir', dir]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^TIME +HOST +REASON +ROUTE +WORKER +TRACE +WHERE +FILE$/m);
    assert.match(list.stdout, new RegExp(` ${hostname()} +timeout/killed +GET /spin +w1 \\d+ +${STUCK_SPAN.traceId} +spinTraced otel-app\\.js:\\d+`));
    const json = JSON.parse((await cli(['dumps', '--dir', dir, '--json'])).stdout) as Array<{ host: string; traceId?: string; spanId?: string }>;
    assert.deepEqual(json.map((d) => [d.host, d.traceId, d.spanId]), [[hostname(), STUCK_SPAN.traceId, STUCK_SPAN.spanId]]);
  });

  test('superv dumps show: the trace as a link, and the trace id of each request in flight', async () => {
    const shown = await cli(['dumps', 'show', 'latest', '--dir', dir]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(shown.stdout.includes(`trace ${STUCK_SPAN.traceId} span ${STUCK_SPAN.spanId} (OpenTelemetry span) · ` +
      `https://traces.example/trace/${STUCK_SPAN.traceId}?span=${STUCK_SPAN.spanId}`), shown.stdout);
    assert.match(shown.stdout, new RegExp(`GET +/wait\\?ms=60000&n=good +trace ${WAITING.traceId}`));
    assert.ok(!shown.stdout.includes('<script>'));
    // The reader's own template wins over the dump's.
    const other = await cli(['dumps', 'show', dumpFile, '--trace-url', 'https://other.example/t/{trace_id}']);
    assert.ok(other.stdout.includes(`https://other.example/t/${STUCK_SPAN.traceId}`), other.stdout);
    const bad = await cli(['dumps', 'show', dumpFile, '--trace-url', 'javascript:alert(1)//{trace_id}']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--trace-url.*javascript:alert.*http:\/\/ or https:\/\//);
  });

  test('superv report: the traced requests with their links; the HTML links them and escapes everything', async () => {
    const html = join(tempDir('superv-html-'), 'r.html');
    dirs.push(join(html, '..'));
    const rep = await cli(['report', '--dir', dir, '--html', html]);
    assert.equal(rep.code, 0, rep.stderr);
    assert.match(rep.stdout, new RegExp(`timeout +GET /spin\\S* +${STUCK_SPAN.traceId} +https://traces\\.example/trace/${STUCK_SPAN.traceId}`));
    assert.match(rep.stdout, new RegExp(`timeout, in flight +GET /wait\\?ms=60000&n=good +${WAITING.traceId}`));
    assert.match(rep.stdout, new RegExp(`^hosts: ${hostname()} \\(1\\)$`, 'm'));
    const page = readFileSync(html, 'utf8');
    const link = `href="https://traces.example/trace/${STUCK_SPAN.traceId}?span=${STUCK_SPAN.spanId}"`;
    assert.ok(page.includes(link), 'the stuck request links to its trace');
    assert.ok(page.includes(`href="https://traces.example/trace/${WAITING.traceId}?span=${WAITING.spanId}"`), 'so does the one in flight');
    assert.ok(page.includes('<section id="traces">'));
    assert.ok(!page.includes('<script>alert') && !page.includes('onerror=alert'), 'no malformed header reaches the page');
    const json = JSON.parse((await cli(['report', '--dir', dir, '--json'])).stdout) as { traces: Array<{ traceId: string; role: string; link?: string }> };
    assert.deepEqual(json.traces.map((t) => [t.role, t.traceId]), [['request', STUCK_SPAN.traceId], ['in flight', WAITING.traceId]]);
  });

  test('a trace_url that is not an http(s) link with {trace_id} is refused at start, naming it', async () => {
    const r = await cli(['start', APP, '--trace-url', 'https://traces.example/search']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /trace_url.*traces\.example\/search.*\{trace_id\}/);
  });
});

describe('a worker blocked in native code', () => {
  test('its requests come from shared memory; those the last heartbeat saw keep their trace ids', async () => {
    const { s: native, port, dir: nativeDir } = await startSuperv(APP, ['--name', 'tracenative', '-w', '1', '--timeout', '3s', '--dump-timeout', '2s', '--slow', '0']);
    dirs.push(nativeDir);
    const waiting = get(port, '/wait?ms=60000', { timeoutMs: 60000, headers: { traceparent: `00-${WAITING.traceId}-${WAITING.spanId}-01` } }).catch((e: Error) => e);
    await native.waitInflight(1);
    // A heartbeat after the request started, so the master has seen it with its trace id.
    await new Promise((r) => setTimeout(r, 600));
    const blocked = get(port, '/native?ms=30000', { timeoutMs: 60000, headers: { traceparent: STUCK_HEADER } }).catch((e: Error) => e);
    const [written] = await native.waitEvent('dump-written', 1, 30000, (l) => l.reason === 'timeout');
    const d = JSON.parse(readFileSync(String(written!.file), 'utf8')) as Dump;
    await native.kill();
    await Promise.all([waiting, blocked]);
    assert.equal(d.capture?.loop.blocked, true);
    const wait = [...(d.capture?.inflight ?? []), ...(d.collateral ?? [])].find((r) => r.url.startsWith('/wait'));
    assert.deepEqual(wait?.trace, { ...WAITING, from: 'traceparent' }, JSON.stringify(d.capture?.inflight));
  });
});

describe('a worker that crashes', () => {
  test('its crash dump carries the request\'s trace ids', async () => {
    const { s: crashing, port, dir: crashDir } = await startSuperv(APP, ['--name', 'tracecrash', '-w', '1', '--slow', '0']);
    dirs.push(crashDir);
    await get(port, '/throw', { headers: { traceparent: STUCK_HEADER } }).catch((e: Error) => e);
    const [written] = await crashing.waitEvent('dump-written', 1, 30000, (l) => l.reason === 'crash');
    const d = JSON.parse(readFileSync(String(written!.file), 'utf8')) as Dump;
    await crashing.kill();
    assert.equal(d.crash?.kind, 'uncaught-exception');
    assert.equal(d.request?.url, '/throw');
    assert.deepEqual(d.request?.trace, { traceId: STUCK_HEADER.slice(3, 35), spanId: STUCK_HEADER.slice(36, 52), from: 'traceparent' });
  });
});

describe('one report across hosts', () => {
  let root = '';
  let web1 = '';
  let web2 = '';
  before(() => {
    root = tempDir('superv-hosts-');
    dirs.push(root);
    // Host web-1: this run's dump dir as a sync job would gather it. Host web-2: a dump of its own (this
    // one rewritten with its host name and time), plus a copy of web-1's dump, gathered twice.
    web1 = join(root, 'web-1', 'superv-dumps');
    web2 = join(root, 'web-2', 'superv-dumps');
    mkdirSync(web1, { recursive: true });
    mkdirSync(web2, { recursive: true });
    for (const f of readdirSync(dir, { withFileTypes: true })) if (f.isFile()) copyFileSync(join(dir, f.name), join(web1, f.name));
    const name = dumpFile.split('/').pop()!;
    copyFileSync(dumpFile, join(web2, name));
    const later = new Date(Date.parse(dump.time) + 1000);
    const other: Dump = { ...dump, time: later.toISOString(), supervisor: { ...dump.supervisor, host: 'web-2' } };
    writeFileSync(join(web2, name.replace(/^[^Z]+Z/, later.toISOString().replace(/:/g, '-'))), JSON.stringify(other));
  });

  test('--dir twice, a glob and a missing dir: merged in time order, the identical copy once, a HOST column, a warning', async () => {
    const missing = join(root, 'web-3', 'superv-dumps');
    const r = await cli(['dumps', '--dir', web1, '--dir', join(root, 'web-[2]', 'superv-dumps'), '--dir', missing]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 2, r.stdout);
    assert.match(rows[0]!, new RegExp(` ${hostname()} +timeout/killed `));
    assert.match(rows[1]!, / web-2 +timeout\/killed /);
    assert.match(r.stderr, new RegExp(`warning: --dir ${missing}: no such directory; reading the others`));
    const glob = await cli(['dumps', '--dir', join(root, '*', 'superv-dumps'), '--json']);
    assert.deepEqual((JSON.parse(glob.stdout) as Array<{ host: string }>).map((d) => d.host), [hostname(), 'web-2']);
  });

  test('superv report over every host: hosts named, both dumps counted, a pattern that matches nothing named', async () => {
    const html = join(root, 'all.html');
    const r = await cli(['report', NAME, '--dir', join(root, '*', 'superv-dumps'), '--dir', join(root, 'nothing-*'), '--html', html]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^hosts: (${hostname()} \\(1\\), web-2 \\(1\\)|web-2 \\(1\\), ${hostname()} \\(1\\))$`, 'm'));
    assert.match(r.stdout, /^dumps: 2 \(2 killed/m);
    assert.match(r.stderr, /warning: --dir .*nothing-\*: no directory matches it; reading the others/);
    assert.ok(readFileSync(html, 'utf8').includes('web-2 w1 pid'), 'the HTML names the host of each dump');
  });

  test('when no --dir can be read: a clear error naming them, non-zero', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    const r = await cli(['report', '--dir', join(root, 'gone'), '--dir', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /none of the --dir given can be read: .*gone: no such directory; .*a-file: not a directory/);
  });
});
