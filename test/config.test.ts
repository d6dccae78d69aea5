// The settings table, its loader and the generated docs: pure logic, unit-tested. The CLI's own exit
// codes and messages are covered end to end in cli-errors.test.ts.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exampleYaml, settingsMarkdown } from '../src/config/help';
import { loadConfig } from '../src/config/load';
import { SETTINGS, SETTING_KEYS, availableCpus, envOf } from '../src/config/settings';
import { ROOT, tempDir } from './helpers';

const cwd = '/srv/app';

test('defaults, and the name comes from the app file', () => {
  const c = loadConfig(['server.js'], {}, cwd);
  assert.equal(c.app, '/srv/app/server.js');
  assert.equal(c.name, 'server');
  assert.equal(c.workers, availableCpus());
  assert.equal(c.timeout, 30_000);
  assert.equal(c.gracefulTimeout, 30_000);
  assert.equal(c.dumpTimeout, 5000);
  assert.equal(c.slow, 10_000);
  assert.equal(c.dumpKeep, 200);
  assert.equal(c.dumpDir, '/srv/app/superv-dumps');
});

test('flags in both forms, args after --, lists split', () => {
  const c = loadConfig(['app.mjs', '-w', '3', '--timeout=2s', '--node-args', '--enable-source-maps --no-warnings', '--', 'a', '--b'], {}, cwd);
  assert.equal(c.workers, 3);
  assert.equal(c.timeout, 2000);
  assert.deepEqual(c.nodeArgs, ['--enable-source-maps', '--no-warnings']);
  assert.deepEqual(c.args, ['a', '--b']);
});

test('precedence: flag > env > file > default', () => {
  const dir = tempDir();
  const file = join(dir, 'superv.yaml');
  writeFileSync(file, 'app: web.js\nworkers: 4\ntimeout: 20s\nslow: 5s\nname: from-file\n');
  const c = loadConfig(['--workers', '2', '--config', file], { SUPERV_TIMEOUT: '10s', SUPERV_WORKERS: '3' }, cwd);
  assert.equal(c.workers, 2, 'flag beats env and file');
  assert.equal(c.timeout, 10_000, 'env beats file');
  assert.equal(c.slow, 5000, 'file beats default');
  assert.equal(c.name, 'from-file');
  assert.equal(c.app, join(dir, 'web.js'), 'paths in the file are relative to the file');
  const viaEnv = loadConfig([], { SUPERV_CONFIG: file }, cwd);
  assert.equal(viaEnv.workers, 4);
});

test('workers: max means the CPUs', () => {
  assert.equal(loadConfig(['a.js', '--workers', 'max'], {}, cwd).workers, availableCpus());
});

test('bad input names the setting, the value and where it came from', () => {
  assert.throws(() => loadConfig(['a.js', '--wokers', '2'], {}, cwd), /unknown setting flag --wokers \(did you mean --workers\?\)/);
  assert.throws(() => loadConfig(['a.js', '--timeout', 'soon'], {}, cwd), /bad value for timeout from flag --timeout: "soon": expected a duration/);
  assert.throws(() => loadConfig(['a.js', '--workers', '0'], {}, cwd), /workers .*"0".*1 to 1024, or max/);
  assert.throws(() => loadConfig(['a.js', '--dump-keep', '-3'], {}, cwd), /dump_keep/);
  assert.throws(() => loadConfig(['a.js'], { SUPERV_TIMEOUT: '5 minutes' }, cwd), /timeout from env SUPERV_TIMEOUT: "5 minutes"/);
  assert.throws(() => loadConfig(['a.js'], { SUPERV_TIMOUT: '5' }, cwd), /env SUPERV_TIMOUT \(did you mean SUPERV_TIMEOUT\?\)/);
  assert.throws(() => loadConfig(['a.txt'], {}, cwd), /a\.txt: expected a JavaScript file \(\.js, \.cjs, \.mjs, \.ts, \.cts or \.mts\)/);
  assert.throws(() => loadConfig([], {}, cwd), /no app given/);
  assert.throws(() => loadConfig(['a.js', 'b.js'], {}, cwd), /unexpected argument "b\.js"/);
  assert.throws(() => loadConfig(['a.js', '--timeout'], {}, cwd), /--timeout: it needs a value/);
  assert.throws(() => loadConfig(['a.js', '--log-level', 'loud'], {}, cwd), /expected one of trace, debug/);
  assert.throws(() => loadConfig(['a.js', '--timeout', '50ms'], {}, cwd), /at least 100ms/);
  assert.equal(loadConfig(['a.js', '--timeout', '0'], {}, cwd).timeout, 0, '0 = off is allowed');
});

test('YAML errors name the key and the line', () => {
  const dir = tempDir();
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'app: a.js\nworkers: 2\ngraceful_timout: 10s\n');
  assert.throws(() => loadConfig(['--config', file], {}, cwd), new RegExp(`graceful_timout in ${file}:3 \\(did you mean graceful_timeout\\?\\)`));
  writeFileSync(file, 'app: a.js\n\ntimeout: [1, 2]\n');
  assert.throws(() => loadConfig(['--config', file], {}, cwd), new RegExp(`timeout from ${file}:3 \\(timeout\\): \\[1,2\\]`));
  writeFileSync(file, 'app: a.js\nworkers: [\n');
  assert.throws(() => loadConfig(['--config', file], {}, cwd), /cannot read config file/);
  writeFileSync(file, '- a\n- b\n');
  assert.throws(() => loadConfig(['--config', file], {}, cwd), /expected a map of settings/);
  assert.throws(() => loadConfig(['--config', join(dir, 'missing.yaml')], {}, cwd), /cannot read config file .*missing\.yaml/);
});

test('every setting has a doc, and the README table is the generated one', () => {
  for (const key of SETTING_KEYS) assert.ok(SETTINGS[key].doc.length > 10, key);
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('<!-- settings:start -->');
  const end = readme.indexOf('<!-- settings:end -->');
  assert.ok(start > 0 && end > start, 'README has the settings markers');
  assert.equal(readme.slice(start + '<!-- settings:start -->\n'.length, end), settingsMarkdown(),
    'README settings table is stale: run `npm run docs`');
});

test('config/superv.yaml is the generated example, and it loads', () => {
  const file = join(ROOT, 'config', 'superv.yaml');
  assert.equal(readFileSync(file, 'utf8'), exampleYaml(), 'config/superv.yaml is stale: run `npm run docs`');
  const c = loadConfig(['--config', file], {}, cwd);
  assert.equal(c.app, join(ROOT, 'config', 'app.js'));
  assert.equal(c.timeout, 30_000);
});

test('the deployment examples agree with the settings', () => {
  const { parse } = require('yaml') as typeof import('yaml');
  const k8s = parse(readFileSync(join(ROOT, 'config', 'kubernetes.yaml'), 'utf8')) as {
    spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Array<{ env: Array<{ name: string }> }> } } };
  };
  const pod = k8s.spec.template.spec;
  assert.ok(pod.terminationGracePeriodSeconds * 1000 > (SETTINGS.gracefulTimeout.default === '30s' ? 30_000 : Infinity));
  const known = new Set(SETTING_KEYS.map(envOf));
  for (const e of pod.containers[0]!.env) if (e.name.startsWith('SUPERV_')) assert.ok(known.has(e.name), e.name);
  const unit = readFileSync(join(ROOT, 'config', 'superv.service'), 'utf8');
  for (const m of unit.matchAll(/Environment=(SUPERV_\w+)=/g)) assert.ok(known.has(m[1]!), m[1]);
});

test('every error code is documented', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8');
  const { ERRORS } = require('../src/errors') as typeof import('../src/errors');
  for (const code of Object.keys(ERRORS)) assert.ok(doc.includes(code), `${code} missing from docs/errors.md`);
});
