// Source-mapping the CPU samples' frames (issue 26), piece by piece: which source line a generated line comes
// from (util/source-lines.ts), which frames are the app's, the re-keying that merges stacks which became
// identical, the stats store that applies it, and the frame map on real files (a script, its map, a deploy that
// rewrites both). The end-to-end test is cpu-sourcemap.test.ts.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { appScriptOf, CpuFrameMap, MAX_KEYS } from '../src/master/cpu-frame-map';
import { CpuStatsStore, remapStacks, type FrameMapper } from '../src/master/cpu-stats';
import { MAX_LINE_SPAN, SourceLines } from '../src/util/source-lines';
import { ROOT, tempDir } from './helpers';

test('SourceLines: a generated line has a source line only when its code comes from one file, a few lines of it', () => {
  const lines = SourceLines.of([
    'AAAA', // 0: source 0, line 0
    'AACA,IAAA', // 1: two mappings, both line 1
    'AAEA,IAUA', // 2: lines 3 and 13: too far apart (a minified line)
    'ACAA', // 3: source 1, line 13 (fields are relative across lines)
    'ADAA,ICAA', // 4: sources 0 and 1: a bundle's line
    '', // 5: no mapping
    'A', // 6: a 1-field segment maps to nothing
    'AAAA,EACA', // 7: source 1, lines 13 and 14: a joined statement, answered with its first line
  ].join(';'));
  assert.deepEqual(lines.at(0), { source: 0, line: 0 });
  assert.deepEqual(lines.at(1), { source: 0, line: 1 });
  assert.equal(lines.at(2), undefined, `a span of 10 lines is more than ${MAX_LINE_SPAN}`);
  assert.deepEqual(lines.at(3), { source: 1, line: 13 });
  assert.equal(lines.at(4), undefined, 'code of two files on one line');
  assert.equal(lines.at(5), undefined);
  assert.equal(lines.at(6), undefined);
  assert.deepEqual(lines.at(7), { source: 1, line: 13 });
  assert.equal(lines.at(8), undefined, 'past the last line');
  assert.throws(() => SourceLines.of('AA!A'), /not base64 VLQ/);
  assert.throws(() => SourceLines.of('AAg'), /truncated VLQ/);
});

test('SourceLines.decode, in chunks with the event loop turning between them, gives what a single pass gives', async () => {
  // Multi-character VLQ values (gC, iB) and negative deltas; every chunk size from 1 to 12 puts a chunk end
  // inside a value somewhere.
  const mappings = ['AAAA,EACA', 'ACgCA,IADA', 'ADAA', '', 'AAiBA,CAAA', 'AAAA'].join(';');
  const once = SourceLines.of(mappings);
  const lines = mappings.split(';').length;
  assert.ok(Array.from({ length: lines }, (_, l) => once.at(l)).some((x) => x !== undefined), 'lines are answered');
  for (let chunk = 1; chunk <= 12; chunk++) {
    let turns = 0;
    const chunked = await SourceLines.decode(mappings, () => { turns++; return new Promise((r) => setImmediate(r)); }, chunk);
    assert.ok(turns >= Math.floor(mappings.length / chunk) - 1, `chunk ${chunk}: ${turns} turns`);
    for (let l = 0; l < lines; l++) assert.deepEqual(chunked.at(l), once.at(l), `chunk ${chunk}, line ${l}`);
  }
});

test('SourceLines agrees with Node\'s SourceMap.findEntry on the lines of a tsc map', () => {
  // The fixture the end-to-end test runs: its burn loop is one source line that tsc splits into seven.
  const ts = join(ROOT, 'test', 'fixtures', 'cpu-typed.ts');
  const js = join(ROOT, 'dist', 'test', 'fixtures', 'cpu-typed.js');
  const payload = JSON.parse(readFileSync(`${js}.map`, 'utf8')) as { mappings: string; sources: string[] };
  const lines = SourceLines.of(payload.mappings);
  const map = new SourceMap(payload as never);
  const generated = readFileSync(js, 'utf8').split('\n');
  let answered = 0;
  for (let l = 0; l < generated.length; l++) {
    const at = lines.at(l);
    if (at === undefined) continue;
    answered++;
    const e = map.findEntry(l, 1e9) as { generatedLine?: number; originalLine?: number };
    assert.equal(e.generatedLine, l, `line ${l + 1} has a mapping of its own`);
    assert.ok(e.originalLine! >= at.line && e.originalLine! <= at.line + MAX_LINE_SPAN, `line ${l + 1}: ${at.line} vs findEntry ${e.originalLine}`);
  }
  assert.ok(answered >= 10, `${answered} lines answered`);
  const burn = readFileSync(ts, 'utf8').split('\n').findIndex((x) => x.includes('// cpu-burn-line'));
  const loop = generated.flatMap((x, i) => (/n\+\+;|process\.cpuUsage\(start\)|return n;/.test(x) ? [i] : []));
  assert.ok(loop.length >= 3, 'the loop is split over several generated lines');
  for (const l of loop) assert.deepEqual(lines.at(l), { source: 0, line: burn }, `generated line ${l + 1} is the burn line`);
});

test('appScriptOf: only the app\'s own scripts are mapped', () => {
  assert.equal(appScriptOf('/srv/app/dist/server.js'), '/srv/app/dist/server.js');
  assert.equal(appScriptOf('file:///srv/app/dist/server.mjs'), '/srv/app/dist/server.mjs');
  assert.equal(appScriptOf('node:internal/http/server'), undefined);
  assert.equal(appScriptOf('/srv/app/node_modules/pg/lib/client.js'), undefined);
  assert.equal(appScriptOf(''), undefined);
  assert.equal(appScriptOf('evalmachine.<anonymous>'), undefined);
});

test('remapStacks: stacks that become identical once mapped merge; routes stay apart', () => {
  const raw = 'burn\t/app/dist/a.js\t46';
  const raw2 = 'burn\t/app/dist/a.js\t48';
  const mapped = 'burn\t/app/src/a.ts\t12';
  const outer = 'handler\tnode:internal/x\t1';
  const map = new Map([[raw, mapped], [raw2, mapped]]);
  const out = remapStacks([
    { route: '/burn', frames: [outer, raw], ms: 10 },
    { route: '/burn', frames: [outer, mapped], ms: 5 },
    { route: '/burn', frames: [outer, raw2], ms: 1 },
    { route: '/other', frames: [outer, raw], ms: 2 },
    { route: '/burn', frames: [], ms: 3 },
  ], (k) => map.get(k) ?? k);
  assert.deepEqual([...out.values()], [
    { route: '/burn', frames: [outer, mapped], ms: 16 },
    { route: '/other', frames: [outer, mapped], ms: 2 },
    { route: '/burn', frames: [], ms: 3 },
  ]);
});

test('CpuStatsStore: frames mapped after they were stored are re-keyed at output, one function, not two', () => {
  const raw = 'burn\t/app/dist/a.js\t46';
  const mapped = 'burn\t/app/src/a.ts\t12';
  const known = new Map<string, string>();
  const noted: unknown[] = [];
  const frames: FrameMapper = {
    generation: 0,
    translate: (k) => known.get(k) ?? k,
    note: (keys) => { noted.push(...keys); },
    settled: () => Promise.resolve(),
    revalidate: () => Promise.resolve(),
  };
  let now = 1_000_000;
  const store = new CpuStatsStore(join(tempDir(), '.superv-cpu-t.json'), 't', { frames, now: () => now });
  const window = { ms: 1000, samples: 10, frames: ['main\t/app/dist/a.js\t60', raw], stacks: [['/burn', [0, 1], 10] as [string, number[], number]] };
  store.addWindow(1, window);
  assert.deepEqual(noted, window.frames, 'the window\'s frames were queued for mapping');
  assert.deepEqual(store.snapshot().stacks.map((s) => s.frames[1]), [raw], 'not mapped yet: the generated frame');
  // The map was read: later windows are translated as they arrive, and what was stored before is re-keyed.
  known.set(raw, mapped);
  frames.generation++;
  now += 1000;
  store.addWindow(1, window);
  const stacks = store.snapshot().stacks;
  assert.equal(stacks.length, 1, JSON.stringify(stacks));
  assert.deepEqual(stacks[0], { route: '/burn', frames: ['main\t/app/dist/a.js\t60', mapped], ms: 20 });
  const fns = store.recentFunctions(1)!.functions.filter((f) => f.name === 'burn');
  assert.deepEqual(fns.map((f) => [f.file, f.line, f.selfMs]), [['/app/src/a.ts', 12, 20]]);
});

test('CpuFrameMap on real files: maps app frames by line, leaves the rest, and maps again after a deploy', async (t) => {
  const dir = tempDir('superv-frames-');
  const script = join(dir, 'app.js');
  const src = join(dir, 'src', 'app.ts');
  const deploy = (mappings: string, padding: string) => {
    writeFileSync(`${script}.map`, JSON.stringify({ version: 3, sources: ['src/app.ts'], names: [], mappings }));
    writeFileSync(script, `// generated${padding}\nfunction hot() {}\n//# sourceMappingURL=app.js.map\n`);
  };
  deploy(';AAKA', ''); // generated line 2 is source line 6
  const map = new CpuFrameMap();
  const hot = `hot\t${script}\t2`;
  const unmapped = `top\t${script}\t1`;
  const url = `hot\tfile://${script}\t2`;
  const node = 'emit\tnode:events\t517';
  const dep = `query\t${join(dir, 'node_modules', 'pg', 'x.js')}\t2`;
  map.note([hot, unmapped, url, node, dep, 42]);
  await map.settled(5000);
  assert.equal(map.translate(hot), `hot\t${src}\t6`);
  assert.equal(map.translate(url), `hot\t${src}\t6`, 'an ESM frame (file: URL) maps to the same source frame');
  assert.equal(map.translate(unmapped), unmapped, 'a line without a mapping keeps its generated frame');
  assert.equal(map.translate(node), node);
  assert.equal(map.translate(dep), dep);
  assert.equal(map.generation, 2);

  // A deploy rewrites the script and its map in place: the next revalidation maps its frames again.
  deploy(';AAOA', ' v2'); // now source line 8
  await map.revalidate();
  await map.settled(5000);
  assert.equal(map.translate(hot), `hot\t${src}\t8`);

  // What a heartbeat pays per frame: a Map look-up.
  const n = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) map.translate(i % 2 === 0 ? hot : node);
  t.diagnostic(`translate: ${(Number(process.hrtime.bigint() - t0) / n).toFixed(0)} ns per frame`);
});

test('CpuFrameMap is bounded: past MAX_KEYS app frames a new one stays generated; library frames do not count', async () => {
  const dir = tempDir('superv-frames-');
  const script = join(dir, 'app.js');
  writeFileSync(`${script}.map`, JSON.stringify({ version: 3, sources: ['app.ts'], names: [], mappings: ';AAKA' }));
  writeFileSync(script, '// generated\nfunction hot() {}\n//# sourceMappingURL=app.js.map\n');
  const map = new CpuFrameMap();
  map.note(Array.from({ length: 2 * MAX_KEYS }, (_, i) => `lib\t/x/node_modules/y/z.js\t${i + 1}`));
  map.note([`hot\t${script}\t2`]);
  await map.settled(5000);
  assert.equal(map.translate(`hot\t${script}\t2`), `hot\t${join(dir, 'app.ts')}\t6`, 'library frames took no room');
  // Lines with no mapping: read, remembered as generated, and counted.
  for (let i = 0; i < MAX_KEYS; i += 1000) {
    map.note(Array.from({ length: 1000 }, (_, j) => `f\t${script}\t${100 + i + j}`));
    await map.settled(30_000);
  }
  const late = `hot\tfile://${script}\t2`;
  map.note([late]);
  await map.settled(5000);
  assert.equal(map.translate(late), late, 'the 20 001st app frame is not mapped');
});
