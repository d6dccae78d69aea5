// `superv startup systemd` end to end: the unit for a real running supervisor names absolute paths, drops
// --daemon, bounds the stop past graceful_timeout; systemd-analyze verify accepts it (where installed); and its
// ExecStart line, run as systemd would run it, starts a supervisor that serves.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { foregroundArgs, quoteArg } from '../src/commands/systemd-unit';
import { CLI, FIXTURES, ROOT, Superv, cli, freePort, getWhenUp, killAll, startSuperv, tempDir } from './helpers';

after(killAll);

const APP = join(FIXTURES, 'app.js');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** systemd-analyze verify on the unit saved under its own name; undefined when accepted. */
function verify(unit: string, name: string, user: boolean): string | undefined {
  const dir = tempDir('superv-unit-');
  const file = join(dir, name);
  writeFileSync(file, unit);
  const runtime = tempDir('superv-xdg-');
  const r = spawnSync('systemd-analyze', [...(user ? ['--user'] : []), 'verify', file], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: runtime } });
  return r.status === 0 ? undefined : r.stderr + r.stdout;
}

function directive(unit: string, key: string): string[] {
  return unit.split('\n').filter((l) => l.startsWith(key + '=')).map((l) => l.slice(key.length + 1));
}

test('startup systemd: a unit for the running supervisor, accepted by systemd-analyze, whose ExecStart serves', async () => {
  const { s, runDir } = await startSuperv(APP, ['-w', '1', '--graceful-timeout', '20s'], { name: 'boot' });
  const r = await cli(runDir, 'startup', 'systemd', 'boot');
  assert.equal(r.code, 0, r.stderr);
  const unit = r.stdout;
  const [exec] = directive(unit, 'ExecStart');
  assert.ok(exec, unit);
  const argv = exec.split(' ');
  assert.equal(argv[0], process.execPath, 'the absolute node');
  assert.equal(argv[1], CLI, 'the absolute superv');
  assert.deepEqual(argv.slice(2, 4), ['start', APP]);
  assert.ok(!argv.includes('--daemon'));
  assert.deepEqual(directive(unit, 'WorkingDirectory'), [ROOT]);
  assert.deepEqual(directive(unit, 'EnvironmentFile'), ['-/etc/superv/boot.env']);
  assert.deepEqual(directive(unit, 'Environment'), [`SUPERV_RUN_DIR=${runDir}`]);
  assert.deepEqual(directive(unit, 'KillMode'), ['mixed']);
  assert.deepEqual(directive(unit, 'TimeoutStopSec'), ['30'], 'graceful_timeout 20 s + 10 s');
  assert.deepEqual(directive(unit, 'ExecReload'), ['/bin/kill -HUP $MAINPID']);
  assert.deepEqual(directive(unit, 'Restart'), ['on-failure']);
  assert.deepEqual(directive(unit, 'WantedBy'), ['multi-user.target']);
  if (hasAnalyze) assert.equal(verify(unit, 'superv-boot.service', false), undefined);

  const user = await cli(runDir, 'startup', 'systemd', 'boot', '--user');
  assert.equal(user.code, 0, user.stderr);
  assert.deepEqual(directive(user.stdout, 'WantedBy'), ['default.target']);
  assert.deepEqual(directive(user.stdout, 'EnvironmentFile'), ['-%h/.config/superv/boot.env']);
  assert.deepEqual(directive(user.stdout, 'User'), []);
  if (hasAnalyze) assert.equal(verify(user.stdout, 'superv-boot.service', true), undefined);

  // --install into a staging dir: the same unit, 0644, not enabled.
  const units = tempDir('superv-units-');
  const inst = await cli(runDir, 'startup', 'systemd', 'boot', '--install', '--unit-dir', units);
  assert.equal(inst.code, 0, inst.stderr);
  assert.match(inst.stdout, /not enabled \(--unit-dir\)/);
  assert.equal(readFileSync(join(units, 'superv-boot.service'), 'utf8'), unit);
  assert.equal(statSync(join(units, 'superv-boot.service')).mode & 0o777, 0o644);

  // The ExecStart line, run as systemd runs it (no shell, its directory, its environment), starts a supervisor.
  assert.equal((await cli(runDir, 'stop', 'boot')).code, 0);
  await s.exited;
  const port = await freePort();
  const again = new Superv(argv.slice(1), { command: argv[0], cwd: ROOT, env: { PORT: String(port), SUPERV_RUN_DIR: runDir } });
  await again.waitEvent('master-ready');
  assert.equal((await getWhenUp(port)).status, 200);
  await again.kill();
});

test('startup systemd -- start …: from a command line; --daemon dropped; bad input named, exit 2', async () => {
  const runDir = tempDir('superv-run-');
  const r = await cli(runDir, 'startup', 'systemd', '--', 'start', APP, '--daemon', '-w', '2', '--name', 'cmdline');
  assert.equal(r.code, 0, r.stderr);
  const [exec] = directive(r.stdout, 'ExecStart');
  assert.equal(exec, `${process.execPath} ${CLI} start ${APP} -w 2 --name cmdline`);
  if (hasAnalyze) assert.equal(verify(r.stdout, 'superv-cmdline.service', false), undefined);

  const missing = await cli(runDir, 'startup', 'systemd', '--', 'start', '/nonexistent/app.js');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /app file not found: \/nonexistent\/app\.js/);
  const upstart = await cli(runDir, 'startup', 'upstart');
  assert.equal(upstart.code, 2);
  assert.match(upstart.stderr, /"upstart" is not supported \(only systemd/);
  const none = await cli(runDir, 'startup', 'systemd', 'ghost');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no supervisor named ghost is running/);
});

test('quoteArg and foregroundArgs: systemd quoting, specifiers and variables escaped', () => {
  assert.equal(quoteArg('/srv/app.js'), '/srv/app.js');
  assert.equal(quoteArg('a b'), '"a b"');
  assert.equal(quoteArg('50%'), '50%%');
  assert.equal(quoteArg('$HOME'), '$$HOME');
  assert.equal(quoteArg('say "hi"\\'), '"say \\"hi\\"\\\\"');
  assert.deepEqual(foregroundArgs(['start', 'a.js', '--daemon', '--daemon=true', '-w', '2']), ['start', 'a.js', '-w', '2']);
});
