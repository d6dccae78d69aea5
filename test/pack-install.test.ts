// The production path, end to end: `npm pack` of a clean copy of this repository (no dist/: its `prepare`
// script must compile dist/src, and `files` must ship it), that tarball installed into a separate app
// directory with no dev dependencies (so no TypeScript: nothing can be compiled at install time), then
// `superv start app.js` there through the installed node_modules/.bin/superv: a 200, then a clean stop.
//
// Dependencies come from npm's local cache (`--offline`), which the repository's own `npm ci` filled; if
// the cache cannot supply them, the registry is tried once, and if that fails too the test is skipped with
// the reason (the one thing it cannot check offline is the registry itself).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT, Superv, freePort, getWhenUp, killAll, rmrf, tempDir } from './helpers';

const SHIPPED = ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'LICENSE', 'src', 'docs', 'config'];
/** npm and its scripts must run on the node under test, whichever is first on PATH. */
const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
const scratch = tempDir('superv-pack-');

after(async () => {
  await killAll();
  rmrf(scratch);
});

interface Run { code: number; stdout: string; stderr: string }

/** The environment for npm and npx: no npm_* settings inherited from an enclosing `npm test`. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = PATH;
  return env;
}

/** npm (or npx), in `cwd`. */
function npm(args: string[], cwd: string, timeoutMs = 300_000, bin = 'npm'): Promise<Run> {
  const env = npmEnv();
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function tarList(tgz: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('tar', ['-tzf', tgz], { maxBuffer: 16 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout.split('\n'))));
  });
}

test('npm pack, install the tarball into an app without dev dependencies, superv start app.js: 200, then a clean stop', async (t) => {
  // A clean copy: the sources only, no dist/, with the repository's node_modules for the compiler.
  const src = join(scratch, 'src');
  mkdirSync(src);
  for (const f of SHIPPED) cpSync(join(ROOT, f), join(src, f), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  const packed = await npm(['pack', '--json', '--pack-destination', scratch], src);
  assert.equal(packed.code, 0, `npm pack failed:\n${packed.stderr.slice(-4000)}`);
  const tgz = join(scratch, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename);
  const files = await tarList(tgz);
  for (const f of ['package/dist/src/cli.js', 'package/dist/src/worker/bootstrap.js', 'package/dist/src/worker/watchdog.js', 'package/LICENSE']) {
    assert.ok(files.includes(f), `the tarball ships ${f} (prepare compiled it, files includes it)`);
  }
  assert.ok(!files.some((f) => f.startsWith('package/dist/test/') || f.startsWith('package/src/')), 'no tests, no TypeScript sources');

  const app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'superv-pack-app', version: '1.0.0', private: true }));
  writeFileSync(join(app, 'app.js'), [
    "const http = require('node:http');",
    "http.createServer((req, res) => res.end('hello from an installed superv')).listen(Number(process.env.PORT), '127.0.0.1');",
    '',
  ].join('\n'));
  const install = ['install', '--omit=dev', '--no-audit', '--no-fund', '--no-package-lock', tgz];
  let installed = await npm([...install, '--offline'], app);
  if (installed.code !== 0 && /ENOTCACHED/.test(installed.stderr)) installed = await npm([...install, '--prefer-offline'], app);
  if (installed.code !== 0 && /ENOTCACHED|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|E503|E502/.test(installed.stderr)) {
    t.skip(`npm's cache cannot supply superv's dependencies and the registry is unreachable: ${installed.stderr.split('\n').find((l) => /ERR/.test(l)) ?? ''}`);
    return;
  }
  assert.equal(installed.code, 0, `npm install of the tarball failed:\n${installed.stderr.slice(-4000)}`);
  const nm = join(app, 'node_modules');
  assert.ok(existsSync(join(nm, 'superv', 'dist', 'src', 'cli.js')));
  for (const dev of ['typescript', 'pm2', 'autocannon', '@types/node']) {
    assert.ok(!existsSync(join(nm, dev)), `dev dependency ${dev} was not installed`);
  }
  const version = (JSON.parse(readFileSync(join(nm, 'superv', 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(version, (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);

  // `npx superv` as the README writes it: the local binary, nothing fetched (--no-install fails rather than download).
  const npx = await npm(['--no-install', 'superv', '--version'], app, 60_000, 'npx');
  assert.equal(npx.code, 0, npx.stderr);
  assert.equal(npx.stdout.trim(), version);

  const port = await freePort();
  const s = new Superv(['start', 'app.js', '--workers', '1', '--name', 'pack', '--dump-dir', join(scratch, 'dumps')],
    { cwd: app, command: join(nm, '.bin', 'superv'), env: { PORT: String(port), PATH } });
  await s.waitEvent('master-ready', 1, 60_000);
  const r = await getWhenUp(port);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello from an installed superv');
  s.signal('SIGTERM');
  const exit = await s.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, s.stderr.slice(-2000));
});
