// The CPU profile of a compiled app names its TypeScript source (issue 26: "with file and line, source-mapped
// like dumps"). A real supervisor runs test/fixtures/cpu-typed.ts as the project's tsc built it (dist/, with its
// .js.map); its /burn route spends its CPU in burnTyped, on a line the test finds in the .ts text. After load,
// the live `superv report --json`, the stats file on disk and a timeout dump's hottest functions must name
// burnTyped at the .ts file and that line, and never also at the .js file. The timeout dump runs the worker
// with --enable-source-maps: V8's call sites stay generated there too, so the master's mapping is what maps.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parseFrame } from '../src/dump/cpu';
import { cpuStatsFile, parseCpuFile } from '../src/master/cpu-stats';
import { CLI, ROOT, get, killAll, startSuperv, type Superv } from './helpers';

const run = promisify(execFile);
const NAME = 'cpumap';
const TS = join(ROOT, 'test', 'fixtures', 'cpu-typed.ts');
const JS = join(ROOT, 'dist', 'test', 'fixtures', 'cpu-typed.js');
/** The source line burnTyped spends its CPU on, found by its text. */
const BURN_LINE = readFileSync(TS, 'utf8').split('\n').findIndex((l) => l.includes('// cpu-burn-line')) + 1;
const REQUESTS = 100;

interface Fn { name: string; file: string; line: number; selfMs: number }

/** REQUESTS requests of 10 ms of CPU, over 2 keep-alive connections. */
async function load(port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  let i = 0;
  const one = () => new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/burn?ms=10', agent }, (res) => { res.resume(); res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode}`)))); })
      .on('error', reject);
  });
  await Promise.all([0, 1].map(async () => { while (i++ < REQUESTS) await one(); }));
  agent.destroy();
}

/** burnTyped's rows: exactly one, at the .ts file and the burn line. */
function assertMapped(fns: readonly Fn[], where: string): void {
  const rows = fns.filter((f) => f.name === 'burnTyped');
  assert.equal(rows.length, 1, `${where}: burnTyped once, not raw and mapped: ${JSON.stringify(rows)}`);
  assert.equal(rows[0]!.file, TS, `${where}: ${JSON.stringify(rows[0])}`);
  assert.equal(rows[0]!.line, BURN_LINE, `${where}: the burn line of the .ts source`);
  assert.ok(rows[0]!.selfMs > 0);
  assert.ok(!fns.some((f) => f.file === JS), `${where}: no frame of the app is left at the compiled JS: ${JSON.stringify(fns.filter((f) => f.file === JS))}`);
}

describe('CPU frames of a compiled app are source-mapped', () => {
  let s: Superv;
  let dir = '';
  let runDir = '';

  before(async () => {
    let port = 0;
    ({ s, dir, runDir, port } = await startSuperv(JS, ['-w', '1', '--cpu-sample-interval', '2ms'], { name: NAME }));
    await s.waitEvent('worker-ready');
    await load(port);
    // A window of samples (1 s) reaches the master.
    await new Promise((r) => setTimeout(r, 1500));
  });
  after(killAll);

  test('the fixture is a real compiled app: the generated line of the loop is not the source line', () => {
    const js = readFileSync(JS, 'utf8');
    const loopLine = js.split('\n').findIndex((l) => l.includes('process.cpuUsage(start)')) + 1;
    assert.ok(loopLine > 0 && loopLine !== BURN_LINE, `generated ${loopLine}, source ${BURN_LINE}`);
    assert.match(js, /\n\/\/# sourceMappingURL=cpu-typed\.js\.map\s*$/);
  });

  test('the live report names the .ts file and line', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'report', NAME, '--json'], { env: { ...process.env, SUPERV_RUN_DIR: runDir }, maxBuffer: 64 * 2 ** 20 });
    const cpu = (JSON.parse(stdout) as { cpu: { functions: Fn[] } | null }).cpu;
    assert.ok(cpu, 'the live report has a cpu section');
    assertMapped(cpu.functions, 'live report');
    const text = await run(process.execPath, [CLI, 'report', NAME], { env: { ...process.env, SUPERV_RUN_DIR: runDir, NO_COLOR: '1' } });
    assert.match(text.stdout, new RegExp(`burnTyped\\s+\\S*cpu-typed\\.ts:${BURN_LINE}\\b`));
  });

  test('the stats file on disk holds the mapped frames, after the stop and with --dir', async () => {
    await run(process.execPath, [CLI, 'stop', NAME], { env: { ...process.env, SUPERV_RUN_DIR: runDir } });
    await s.exited;
    const file = parseCpuFile(readFileSync(cpuStatsFile(dir, NAME), 'utf8'));
    const frames = file.stacks.flatMap((st) => st.frames.map(parseFrame));
    assert.ok(frames.some((f) => f.name === 'burnTyped' && f.file === TS && f.line === BURN_LINE), 'burnTyped at the .ts line');
    assert.deepEqual(frames.filter((f) => f.file === JS), [], 'no frame left at the compiled JS');
    const { stdout } = await run(process.execPath, [CLI, 'report', '--dir', dir, '--json'], { maxBuffer: 64 * 2 ** 20 });
    assertMapped((JSON.parse(stdout) as { cpu: { functions: Fn[] } }).cpu.functions, 'report --dir');
  });
});

describe('a timeout dump of a compiled app, run with --enable-source-maps', () => {
  after(killAll);

  test('names its hottest function at the .ts file and line', async () => {
    const { s, port } = await startSuperv(JS, ['-w', '1', '--timeout', '3s', '--dump-timeout', '3s', '--node-args', '--enable-source-maps'], { name: 'cpumapstall' });
    await s.waitEvent('worker-ready');
    void get(port, '/burn?ms=60000', { timeoutMs: 60000 }).catch(() => undefined);
    const [written] = await s.waitEvent('dump-written', 1, 30000, (l) => l.reason === 'timeout');
    const dump = JSON.parse(readFileSync(String(written!.file), 'utf8')) as { cpu?: { functions: Fn[] } };
    assert.ok(dump.cpu, 'the dump has a cpu section');
    assert.equal(dump.cpu.functions[0]?.name, 'burnTyped', JSON.stringify(dump.cpu.functions.slice(0, 3)));
    assertMapped(dump.cpu.functions, 'timeout dump');
  });
});
