// MainThreadCapturer against real blocked main threads: each test runs test/fixtures/capture-harness.js, whose
// main thread blocks in a named way while its watchdog thread captures it with the compiled capturer and
// prints the result. The child is killed by its PID in `finally`. Timing asserts have wide margins: the
// machine is shared and has 2 cores.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import type { StackCapture } from '../src/worker/capture/capture';
import type { Frame } from '../src/dump/types';

const ROOT = join(__dirname, '..', '..');
const HARNESS = join(ROOT, 'test', 'fixtures', 'capture-harness.js');
const TYPED_TS = join(ROOT, 'test', 'fixtures', 'capture-typed.ts');
const TYPED_JS = join(ROOT, 'dist', 'test', 'fixtures', 'capture-typed.js');

interface CaptureSpec {
  delayMs: number;
  deadlineMs: number;
  pause: boolean;
  probe?: 'ok' | 'throws' | 'spins' | 'huge';
  localsFrames?: number;
}

interface HarnessConfig {
  mode: 'spin' | 'regex' | 'native' | 'typed' | 'idle' | 'debugger-statement' | 'big' | 'hostile';
  scale?: number;
  blockMs: number;
  captures: CaptureSpec[];
  typedModule?: string;
  ownPrefix?: string;
  debugger?: 'on-demand' | 'always';
  maxProbeChars?: number;
  holdMs?: number;
}

interface CaptureLine { startedAt: number; endedAt: number; result: StackCapture }

interface HarnessRun {
  pid: number;
  code: number | null;
  captures: CaptureLine[];
  blockStart?: number;
  blockEnd?: number;
  blockResult?: string;
  pauses?: number;
  disconnected?: string;
  stdout: string;
  stderr: string;
}

/** Runs the harness to its exit; a harness that does not exit in `timeoutMs` (a main thread left paused) fails. */
async function runHarness(cfg: HarnessConfig, timeoutMs = 20_000): Promise<HarnessRun> {
  const child = spawn(process.execPath, [HARNESS, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`harness did not exit within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`)), timeoutMs);
      child.on('close', (c) => { clearTimeout(timer); resolve(c); });
    });
    return { pid: child.pid!, code, stdout, stderr, ...parse(stdout) };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function parse(stdout: string): Omit<HarnessRun, 'pid' | 'code' | 'stdout' | 'stderr'> {
  const out: Omit<HarnessRun, 'pid' | 'code' | 'stdout' | 'stderr'> = { captures: [] };
  for (const line of stdout.split('\n')) {
    const [word, ...rest] = line.split(' ');
    const arg = rest.join(' ');
    if (word === 'CAPTURE') out.captures.push(JSON.parse(arg) as CaptureLine);
    else if (word === 'BLOCK-START') out.blockStart = Number(arg);
    else if (word === 'BLOCK-END') { out.blockEnd = Number(rest[0]); out.blockResult = rest.slice(1).join(' '); }
    else if (word === 'PAUSES') out.pauses = Number(arg);
    else if (word === 'DISCONNECT') out.disconnected = arg;
  }
  return out;
}

/** 1-based line of the first line containing `marker`: the asserts follow the fixtures when they are edited. */
function lineOf(file: string, marker: string): number {
  const i = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, `marker ${marker} not in ${file}`);
  return i + 1;
}

function only(run: HarnessRun, n = 1): CaptureLine[] {
  assert.equal(run.code, 0, `harness failed\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  assert.equal(run.captures.length, n, run.stdout);
  assert.ok(run.blockEnd !== undefined, run.stdout);
  // The watchdog stays connected until the block ends or 10 s pass: a main thread the capturer left paused
  // would only go on when the session went away, after those 10 s.
  assert.equal(run.disconnected, 'block-ended', `the main thread was left paused until the session went\n${run.stdout}`);
  return run.captures;
}

function top(c: StackCapture): Frame {
  assert.ok(c.stack && c.stack.length > 0, `no stack: ${JSON.stringify(c)}`);
  return c.stack[0]!;
}

const NATIVE_REASON = /^main thread did not answer within 150 ms: it is likely in a synchronous native call/;

describe('MainThreadCapturer on a blocked main thread', () => {
  test('a busy JS loop: the looping function, its caller, their locals, and the probe', async (t) => {
    const run = await runHarness({ mode: 'spin', blockMs: 2500, captures: [{ delayMs: 300, deadlineMs: 2000, pause: true, probe: 'ok' }] });
    const [c] = only(run);
    const r = c!.result;
    t.diagnostic(`timings ${JSON.stringify(r.timings)} elapsed ${r.elapsedMs} ms`);
    assert.equal(r.complete, true, r.incomplete);
    assert.equal(r.incomplete, undefined);
    // Evaluated on the main thread while it was blocked: it saw the app's state of that moment.
    assert.deepEqual(r.probe, { pid: run.pid, blockedIn: 'spinForever' });

    const f = top(r);
    assert.equal(f.function, 'spinForever');
    assert.equal(f.file, HARNESS);
    assert.equal(f.app, true);
    assert.ok(f.line >= lineOf(HARNESS, 'while (Date.now() - started < limitMs)') && f.line <= lineOf(HARNESS, '// spin-line'), `line ${f.line}`);
    assert.ok(f.column >= 1);
    const locals = f.locals ?? {};
    assert.equal(locals['counter']?.type, 'number');
    assert.ok(Number(locals['counter']?.value) > 0, JSON.stringify(locals['counter']));
    // Raw here: redaction happens before the dump reaches the disk.
    assert.deepEqual(locals['userPassword'], { type: 'string', value: '"hunter2"' });
    assert.equal(locals['config']?.props?.['host'], '"db.internal"');
    assert.equal(locals['config']?.props?.['port'], '5432');
    // The module's state is shown, its function declarations are not.
    assert.equal(locals['state']?.props?.['blockedIn'], '"spinForever"');
    assert.equal(locals['handleRequest'], undefined);

    const caller = r.stack![1]!;
    assert.equal(caller.function, 'handleRequest');
    assert.equal(caller.line, lineOf(HARNESS, 'return spinForever(limitMs) + requestId;'));
    assert.deepEqual(caller.locals?.['requestId'], { type: 'number', value: '42' });
    // The module scope appears once, in the top frame, not again in every frame of the module.
    assert.equal(caller.locals?.['state'], undefined);

    const internal = r.stack!.find((fr) => fr.file.startsWith('node:'));
    assert.ok(internal, 'a node: internal frame below the app');
    assert.equal(internal.app, false);
    assert.ok(r.stack!.filter((fr) => fr.locals).length <= 5, 'locals for the top 5 frames only');
    assert.ok(c!.endedAt < run.blockEnd!, 'captured during the block');
    assert.ok(Number(run.blockResult) > 0, 'the loop ran on after the capture');
  });

  test('large locals: each shown by kind, size and first entries, read in a bounded time, in every frame', async (t) => {
    const run = await runHarness({ mode: 'big', blockMs: 4000, captures: [{ delayMs: 100, deadlineMs: 3000, pause: true, localsFrames: 5 }] }, 60_000);
    const [c] = only(run);
    const r = c!.result;
    t.diagnostic(`timings ${JSON.stringify(r.timings)} elapsed ${r.elapsedMs} ms`);
    assert.equal(r.complete, true, r.incomplete);
    const f = top(r);
    assert.equal(f.function, 'spinWith');
    assert.equal(f.line, lineOf(HARNESS, '// big-spin-line'));
    const l = f.locals ?? {};
    assert.deepEqual(l['bigArray'], { type: 'array', value: 'Array(1000000)', size: 1_000_000, props: { ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i), String(i)])), '…': 'more not shown' } });
    assert.equal(l['bigMap']?.type, 'map');
    assert.equal(l['bigMap']?.value, 'Map(200000)');
    assert.equal(l['bigMap']?.size, 200_000);
    assert.equal(l['bigMap']?.props?.['"key-0"'], '0');
    assert.equal(l['bigSet']?.value, 'Set(200000)');
    assert.equal(l['bigSet']?.props?.['9'], '9');
    assert.deepEqual([l['bigTyped']?.type, l['bigTyped']?.value, l['bigTyped']?.size, l['bigTyped']?.props?.['0']], ['typedarray', 'Float64Array(1000000)', 1_000_000, '0']);
    assert.deepEqual([l['bigString']?.type, l['bigString']?.size], ['string', 10_000_000]);
    assert.equal(l['bigString']?.value, `"${'x'.repeat(200)}"… (10000000 chars)`);
    assert.deepEqual([l['manyProps']?.type, l['manyProps']?.value, l['manyProps']?.size, l['manyProps']?.props?.['p0']], ['object', 'Object', 50_000, '0']);
    assert.equal(Object.keys(l['manyProps']?.props ?? {}).length, 11);
    // One level down too: an object holding them all describes each by kind and size.
    assert.deepEqual(l['data']?.props, {
      bigArray: 'Array(1000000)', bigMap: 'Map(200000)', bigSet: 'Set(200000)', bigTyped: 'Float64Array(1000000)',
      bigString: `"${'x'.repeat(100)}"… (10000000 chars)`, manyProps: 'Object',
    });
    // The same values, every frame of the recursion down to localsFrames: each read as cheaply.
    assert.deepEqual(r.stack!.slice(0, 5).map((fr) => fr.locals?.['bigMap']?.size), [200_000, 200_000, 200_000, 200_000, 200_000]);
    assert.equal(r.stack![5]!.locals, undefined, 'localsFrames: 5');
    // The inspector's own previews took seconds on these (every Array index enumerated, every Map entry copied).
    assert.ok((r.timings.localsMs ?? Infinity) < 2000, `locals took ${r.timings.localsMs} ms`);
  });

  test('hostile values: no getter, Proxy trap or toJSON runs; each still shown by kind', async () => {
    const run = await runHarness({ mode: 'hostile', blockMs: 1500, captures: [{ delayMs: 100, deadlineMs: 2000, pause: true, localsFrames: 1 }] });
    const [c] = only(run);
    assert.equal(c!.result.complete, true, c!.result.incomplete);
    const l = top(c!.result).locals ?? {};
    assert.match(run.blockResult ?? '', / calls=0"$/, `a getter, trap or toJSON ran during the capture: ${run.blockResult}`);
    assert.deepEqual(l['withGetter'], { type: 'object', value: 'Object', size: 3, props: { plain: '1', trap: 'accessor', toJSON: 'function' } });
    assert.deepEqual(l['proxy'], { type: 'proxy', value: 'Proxy' });
    assert.deepEqual(l['proxyArray'], { type: 'proxy', value: 'Proxy' });
    assert.equal(l['onProxyProto']?.value, 'Object', 'its prototype (a Proxy) was not asked for a constructor');
    assert.deepEqual(l['getterArray']?.props, { '0': 'accessor', '1': '2' });
    assert.equal(l['instance']?.value, 'Object', 'a constructor whose name is a getter is not asked');
    assert.deepEqual(l['mapOfHostile']?.props, { Proxy: 'Object' });
    assert.equal(l['env']?.type, 'object', 'process.env (an interceptor object) is shown, or named unreadable');
  });

  test('a catastrophic regex: the function calling RegExp#test', async () => {
    const run = await runHarness({ mode: 'regex', blockMs: 0, captures: [{ delayMs: 200, deadlineMs: 2000, pause: true, probe: 'ok', localsFrames: 1 }] });
    const [c] = only(run);
    const f = top(c!.result);
    assert.equal(c!.result.complete, true, c!.result.incomplete);
    assert.equal(f.function, 'matchEvil');
    assert.equal(f.line, lineOf(HARNESS, '// regex-line'));
    assert.equal(f.app, true);
    assert.equal(f.locals?.['input']?.value, JSON.stringify(`${'a'.repeat(25)}c`));
    assert.equal(c!.result.stack![1]?.function, 'block');
    assert.ok(c!.endedAt < run.blockEnd!, 'captured during the regex, not after it');
  });

  test('a synchronous native call: says so within 150 ms instead of waiting for it', async (t) => {
    const run = await runHarness({ mode: 'native', blockMs: 2500, captures: [{ delayMs: 300, deadlineMs: 2000, pause: true, probe: 'ok' }] });
    const [c] = only(run);
    const r = c!.result;
    t.diagnostic(`returned after ${r.elapsedMs} ms, ${run.blockEnd! - c!.endedAt} ms before execSync returned`);
    assert.equal(r.complete, false);
    assert.match(r.incomplete ?? '', NATIVE_REASON);
    assert.equal(r.stack, undefined);
    assert.equal(r.probe, undefined);
    // Generous margins: the answer window is 150 ms, the sleep ~2.2 s longer than the capture's start.
    assert.ok(r.elapsedMs < 1500, `elapsed ${r.elapsedMs} ms: it waited for the deadline`);
    assert.ok(c!.endedAt < run.blockEnd! - 1000, 'it waited for the native call');
    assert.equal(run.pauses, 0, 'nothing was paused after the native call returned');
  });

  test('source maps: a frame of compiled TypeScript points at the .ts line (map file next to the script)', async () => {
    const run = await runHarness({ mode: 'typed', typedModule: TYPED_JS, blockMs: 2000, captures: [{ delayMs: 300, deadlineMs: 2000, pause: true, localsFrames: 1 }] });
    const [c] = only(run);
    const f = top(c!.result);
    assert.equal(c!.result.complete, true, c!.result.incomplete);
    assert.equal(f.function, 'spinTyped');
    assert.equal(f.file, TYPED_JS);
    assert.equal(f.app, true);
    assert.ok(f.original, `no original: ${JSON.stringify(f)}`);
    assert.equal(f.original.file, TYPED_TS);
    assert.ok(f.original.line >= lineOf(TYPED_TS, 'while (Date.now()') && f.original.line <= lineOf(TYPED_TS, '// typed-spin-line'), `ts line ${f.original.line}`);
    assert.notEqual(f.original.line, f.line, 'the generated line is not the source line (tsc adds a header)');
    assert.equal(f.locals?.['typedCounter']?.type, 'number');
    assert.equal(c!.result.stack![1]!.original, undefined, 'plain JS frames have no original');
  });

  test('source maps: an inline data: map; and a custom own-files prefix marks frames app: false', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'superv-capture-'));
    try {
      const map = JSON.parse(readFileSync(`${TYPED_JS}.map`, 'utf8')) as { sources: string[]; sourceRoot?: string };
      map.sources = [pathToFileURL(TYPED_TS).href];
      map.sourceRoot = '';
      const inline = `data:application/json;charset=utf-8;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}`;
      const js = readFileSync(TYPED_JS, 'utf8').replace(/\/\/# sourceMappingURL=.*$/m, `//# sourceMappingURL=${inline}`);
      const file = join(dir, 'inline-typed.js');
      writeFileSync(file, js);
      const run = await runHarness({ mode: 'typed', typedModule: file, ownPrefix: dir, blockMs: 2000, captures: [{ delayMs: 300, deadlineMs: 2000, pause: true, localsFrames: 0 }] });
      const [c] = only(run);
      const f = top(c!.result);
      assert.equal(f.function, 'spinTyped');
      assert.equal(f.file, file);
      assert.equal(f.app, false, 'under the own-files prefix');
      assert.equal(f.original?.file, TYPED_TS);
      assert.ok(f.original.line >= lineOf(TYPED_TS, 'while (Date.now()') && f.original.line <= lineOf(TYPED_TS, '// typed-spin-line'));
      assert.equal(f.locals, undefined, 'localsFrames: 0');
      assert.equal(c!.result.stack![1]!.app, true, 'the harness frame is not under the prefix');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a probe that throws, runs forever or returns too much: said why, the stack is still taken', async () => {
    const run = await runHarness({
      mode: 'spin', blockMs: 3000, maxProbeChars: 1000,
      captures: [
        { delayMs: 200, deadlineMs: 1000, pause: false, probe: 'throws' },
        { delayMs: 0, deadlineMs: 800, pause: true, probe: 'spins', localsFrames: 1 },
        { delayMs: 0, deadlineMs: 1000, pause: false, probe: 'huge' },
      ],
    });
    const [threw, spun, huge] = only(run, 3);
    assert.equal(threw!.result.complete, false);
    assert.match(threw!.result.incomplete ?? '', /^the probe threw: Error: probe exploded$/);
    assert.equal(threw!.result.stack, undefined, 'pause: false takes no stack');

    assert.match(spun!.result.incomplete ?? '', /^the probe did not finish within \d+ ms$/);
    assert.equal(top(spun!.result).function, 'spinForever', 'time was left for the stack');
    assert.ok(spun!.endedAt - spun!.startedAt < 800 + 500, 'returned by its deadline');

    assert.match(huge!.result.incomplete ?? '', /^the probe's result \(100000 chars\) is over the 1000 limit: dropped$/);
    assert.equal(huge!.result.probe, undefined);
    // V8 terminated the runaway probe; the app's loop under it carried on to its normal end.
    assert.ok(Number(run.blockResult) > 0);
  });

  for (const mode of ['on-demand', 'always'] as const) {
    test(`an idle loop (debugger ${mode}): a pause that cannot land is given up and never holds the app later`, async () => {
      const run = await runHarness({ mode: 'idle', debugger: mode, blockMs: 1500, captures: [{ delayMs: 100, deadlineMs: 500, pause: true, probe: 'ok' }] });
      const [c] = only(run);
      assert.equal(c!.result.complete, false);
      assert.match(c!.result.incomplete ?? '', /^the main thread did not pause within \d+ ms$/);
      assert.deepEqual(c!.result.probe, { pid: run.pid, blockedIn: 'nothing' }, 'the probe works on an idle loop too');
      // The pause request outlives the capture: with the Debugger kept on it lands at the next JS (the timer)
      // and must be resumed; on demand, the Debugger.disable sent after the capture cancels it.
      if (mode === 'always') assert.ok((run.pauses ?? 0) >= 1, 'the late pause did land');
    });

    test(`tight deadlines (debugger ${mode}): every capture returns by its deadline, the app is never left paused`, async () => {
      const captures: CaptureSpec[] = Array.from({ length: 30 }, (_, i) => ({ delayMs: 5, deadlineMs: 1 + i, pause: true, probe: 'ok' as const }));
      const run = await runHarness({ mode: 'spin', debugger: mode, blockMs: 2500, captures });
      only(run, 30);
      for (const [i, c] of run.captures.entries()) {
        assert.ok(c.endedAt - c.startedAt <= captures[i]!.deadlineMs + 500, `capture ${i}: ${c.endedAt - c.startedAt} ms`);
        assert.equal(c.result.complete, c.result.incomplete === undefined);
      }
      assert.ok(Number(run.blockResult) > 0);
    });
  }

  test('on demand, the Debugger is off again after a capture: the app\'s debugger; statements stop pausing', async () => {
    // While the Debugger is on, every `debugger;` in this loop pauses (thousands a second, next test); off, none.
    const run = await runHarness({ mode: 'debugger-statement', blockMs: 1000, captures: [{ delayMs: 300, deadlineMs: 1000, pause: true, localsFrames: 0 }] });
    const [c] = only(run);
    assert.equal(top(c!.result).function, 'withDebuggerStatements');
    assert.ok((run.pauses ?? 0) >= 1, 'the capture paused');
    assert.ok((run.pauses ?? 0) < 20, `${run.pauses} pauses: the Debugger stayed on after the capture`);
    assert.ok(Number(run.blockResult) > 1000, 'the loop ran freely');
  });

  test('debugger; statements in the app are resumed when the Debugger is kept on', async () => {
    const run = await runHarness({ mode: 'debugger-statement', debugger: 'always', blockMs: 800, captures: [] });
    only(run, 0);
    assert.ok((run.pauses ?? 0) >= 20, `${run.pauses} pauses: the statements did pause`);
    assert.ok(Number(run.blockResult) >= 1, 'and the loop went on');
  });
});
