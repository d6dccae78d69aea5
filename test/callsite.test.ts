// Which frame a statement's call site names (pure logic, on stack text as V8 formats it): the app's nearest
// frame, on the synchronous stack or the await chain, with the library frame kept as `via`; none of the
// app's means the library's, marked so.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveSite, siteLabel } from '../src/worker/instrument/callsite';

const stack = (...frames: string[]): { stack: string } => ({ stack: ['Error', ...frames.map((f) => `    at ${f}`)].join('\n') });

test('behind a query builder: the app function on the await chain, the builder\'s frame as via', () => {
  const site = resolveSite(stack(
    '/srv/app/node_modules/knex/lib/dialects/postgres/index.js:279:18',
    'new Promise (<anonymous>)',
    'Runner.query (/srv/app/node_modules/knex/lib/execution/runner.js:147:36)',
    'process.processTicksAndRejections (node:internal/process/task_queues:95:5)',
    'async Runner.run (/srv/app/node_modules/knex/lib/execution/runner.js:30:19)',
    'async loadReport (/srv/app/src/report.js:12:14)',
    'async handler (/srv/app/app.js:40:3)',
  ));
  assert.deepEqual(site, {
    file: '/srv/app/src/report.js', line: 12, column: 14, function: 'loadReport', app: true, async: true,
    via: { file: '/srv/app/node_modules/knex/lib/dialects/postgres/index.js', line: 279, column: 18, function: '<anonymous>' },
  });
  assert.equal(siteLabel(site), '/srv/app/src/report.js:12 (loadReport)');
});

test('the app calling the driver itself: its frame, synchronous, and no via', () => {
  const site = resolveSite(stack('loadReport (/srv/app/src/report.js:9:20)', 'handler (/srv/app/app.js:40:3)'));
  assert.deepEqual(site, { file: '/srv/app/src/report.js', line: 9, column: 20, function: 'loadReport', app: true });
});

test('no app frame on the stack: the library\'s, marked, and the sentence says so', () => {
  const site = resolveSite(stack('commit (/srv/app/node_modules/postgres/cjs/src/index.js:121:21)', 'process.processTicksAndRejections (node:internal/process/task_queues:95:5)'));
  assert.equal(site?.app, false);
  assert.equal(site?.function, 'commit');
  assert.match(siteLabel(site) ?? '', /^library code only, no app frame on the stack: \/srv\/app\/node_modules\/postgres/);
});
