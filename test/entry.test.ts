// Any entry point a pm2 user runs: a package binary by name (`superv start next -- start`), the
// extensionless script behind it by path (`node_modules/next/dist/bin/next`), and a clear refusal of what
// Node cannot run. The package is laid out in a temp app as npm lays it out: the script in the package, a
// symlink in node_modules/.bin.

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hasNodeShebang } from '../src/config/entry';
import { FIXTURES, Superv, freePort, getWhenUp, killAll, rmrf, tempDir } from './helpers';

const app = tempDir('superv-entry-');
after(async () => { await killAll(); rmrf(app); });

before(() => {
  const pkg = join(app, 'node_modules', 'fakenext');
  mkdirSync(join(pkg, 'dist', 'bin'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'fakenext', version: '1.0.0', bin: { fakenext: 'dist/bin/fakenext' } }));
  copyFileSync(join(FIXTURES, 'bin-app', 'fakenext'), join(pkg, 'dist', 'bin', 'fakenext'));
  const shell = join(app, 'node_modules', 'shelltool');
  mkdirSync(shell, { recursive: true });
  copyFileSync(join(FIXTURES, 'bin-app', 'not-node'), join(shell, 'not-node'));
  mkdirSync(join(app, 'node_modules', '.bin'));
  symlinkSync('../fakenext/dist/bin/fakenext', join(app, 'node_modules', '.bin', 'fakenext'));
  symlinkSync('../shelltool/not-node', join(app, 'node_modules', '.bin', 'not-node'));
  writeFileSync(join(app, 'app.py'), 'print("hi")\n');
});

async function serves(args: string[]): Promise<{ s: Superv; body: string }> {
  const port = await freePort();
  const s = new Superv(['start', ...args], { cwd: app, env: { PORT: String(port) } });
  await s.waitEvent('master-ready');
  const r = await getWhenUp(port);
  assert.equal(r.status, 200);
  return { s, body: r.body };
}

describe('entry points', () => {
  test('a package binary by name: `superv start fakenext -- start` runs node_modules/.bin/fakenext\'s script', async () => {
    const { s, body } = await serves(['fakenext', '-w', '1', '--dump-dir', join(app, 'dumps'), '--', 'start']);
    assert.equal(body, 'fakenext start', 'the app got its subcommand');
    const start = s.events('master-start')[0]!;
    assert.equal(start.app, join(app, 'node_modules', 'fakenext', 'dist', 'bin', 'fakenext'), 'the symlink is followed to the script');
    assert.match(String(start.msg), /^superv fakenext:/, 'named after the binary');
    s.signal('SIGTERM');
    assert.equal((await s.exited).code, 0);
  });

  test('the extensionless script by path, as pm2 users write it', async () => {
    const { s, body } = await serves(['node_modules/fakenext/dist/bin/fakenext', '-w', '1', '--dump-dir', join(app, 'dumps'), '--', 'start']);
    assert.equal(body, 'fakenext start');
    s.signal('SIGTERM');
    assert.equal((await s.exited).code, 0);
  });

  test('what Node cannot run is refused with what it is and what superv expects', async () => {
    for (const [arg, what] of [['not-node', /a script for \/bin\/sh/], ['app.py', /app\.py is not a JavaScript file/], ['node_modules', /is not a file/]] as const) {
      const s = new Superv(['start', arg], { cwd: app });
      const { code } = await s.exited;
      assert.equal(code, 2, arg);
      assert.match(s.stderr, what, arg);
      assert.match(s.stderr, /a script with a node shebang, or a package binary name/, arg);
      assert.equal(s.events('worker-spawned').length, 0);
    }
    const missing = new Superv(['start', 'nosuchbin'], { cwd: app });
    assert.equal((await missing.exited).code, 2);
    assert.match(missing.stderr, /app file not found: .*nosuchbin/);
  });

  test('node shebangs', () => {
    for (const yes of ['#!/usr/bin/env node', '#!/usr/bin/node', '#!/usr/bin/env -S node --max-old-space-size=100', '#!/usr/local/bin/nodejs\n']) assert.ok(hasNodeShebang(yes), yes);
    for (const no of ['#!/bin/sh', '#!/usr/bin/env python3', '// node', '#!/usr/bin/env nodemon']) assert.ok(!hasNodeShebang(no), no);
  });
});
