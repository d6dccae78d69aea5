// The house's shape, enforced. Data flows one way: worker → master → disk → reader, and each room imports
// only from the rooms below it (ALLOWED). A second test starts a real worker and checks that superv put only
// its worker-side code into the app's process: no logger, no metrics, no report, no master code.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { after, test } from 'node:test';
import { FIXTURES, ROOT, get, killAll, startSuperv } from './helpers';

after(killAll);

/** Which rooms each room may import from (besides itself). A room is a folder of src/ or a top-level file. */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  util: [],
  errors: [],
  ndjson: [],
  config: ['util', 'errors'],
  dump: ['util'],
  protocol: ['dump'],
  control: ['util', 'errors', 'ndjson'],
  // The worker: runs inside the app's process.
  worker: ['util', 'errors', 'ndjson', 'dump', 'protocol'],
  // The master: enriches, writes, supervises.
  master: ['util', 'errors', 'ndjson', 'config', 'dump', 'protocol', 'control'],
  // The reader: what a person's CLI shows from dumps on disk.
  reader: ['util', 'errors', 'config', 'dump'],
  // The CLI on top: talks to a master, starts one, or reads dumps.
  commands: ['util', 'errors', 'ndjson', 'config', 'dump', 'protocol', 'control', 'master', 'reader'],
  cli: ['util', 'errors', 'config', 'protocol', 'master', 'commands'],
  // The package's API for apps (state providers): worker side only.
  index: ['dump', 'worker'],
};

const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

function roomOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? parts[0]! : parts[0]!.replace(/\.ts$/, '');
}

/** Every relative import of a file: static, type-only, `require('./x')` and `import('./x')`. */
export function importsOf(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s+|\brequire\(|\bimport\()'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

/** The imports that break ALLOWED, as "file → target (room → room)". */
export function violations(files: ReadonlyArray<{ file: string; text: string }>): string[] {
  const out: string[] = [];
  for (const { file, text } of files) {
    const from = roomOf(file);
    const allowed = ALLOWED[from];
    for (const spec of importsOf(text)) {
      const to = roomOf(resolve(dirname(file), spec) + '.ts');
      if (to === from) continue;
      if (!allowed || !allowed.includes(to)) out.push(`${relative(ROOT, file)} → ${spec} (${from} → ${to})`);
    }
  }
  return out;
}

test('every import follows the rooms table', () => {
  const files = sources(SRC).map((file) => ({ file, text: readFileSync(file, 'utf8') }));
  assert.ok(files.length > 50, 'read the sources');
  for (const { file } of files) assert.ok(ALLOWED[roomOf(file)], `${relative(ROOT, file)} is in no room of the table`);
  assert.deepEqual(violations(files), []);
});

test('the checker itself catches a worker file importing the master, and a lazy require of the reader', () => {
  const fake = [
    { file: join(SRC, 'worker', 'x.ts'), text: "import { writeDump } from '../master/dump-write';" },
    { file: join(SRC, 'master', 'y.ts'), text: "const r = require('../reader/report') as typeof import('../reader/report');" },
    { file: join(SRC, 'dump', 'z.ts'), text: "import type { Heartbeat } from '../protocol';" },
  ];
  assert.equal(violations(fake).length, 4);
});

test('a worker loads only worker-side superv code into the app process', async () => {
  const { port } = await startSuperv(join(FIXTURES, 'loaded-modules.js'), ['-w', '1']);
  const loaded = JSON.parse((await get(port, '/')).body) as string[];
  const ours = loaded.filter((p) => p.startsWith(join(ROOT, 'dist', 'src') + '/')).map((p) => relative(join(ROOT, 'dist', 'src'), p));
  assert.ok(ours.includes('worker/bootstrap.js') && ours.includes('worker/tracker.js'), `the bootstrap ran: ${ours.join(', ')}`);
  const misplaced = ours.filter((p) => !ALLOWED.worker!.concat('worker').includes(p.includes('/') ? p.split('/')[0]! : p.replace(/\.js$/, '')));
  assert.deepEqual(misplaced, [], 'modules of rooms the worker must not load');
  const heavy = loaded.filter((p) => /\/node_modules\/(pino|pino-pretty|prom-client|yaml|pidusage)\//.test(p));
  assert.deepEqual(heavy, [], 'master-only packages in the app process');
});
