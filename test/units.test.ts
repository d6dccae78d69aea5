import assert from 'node:assert/strict';
import { test } from 'node:test';
import { didYouMean, formatDuration, parseDuration, parseSize } from '../src/config/units';
import { CrashBackoff } from '../src/master/restarts';

test('durations: bare numbers are seconds, units ms/s/m/h', () => {
  assert.equal(parseDuration('30'), 30_000);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration(5), 5000);
  assert.equal(parseDuration('0'), 0);
  for (const bad of ['', 'abc', '-1', '10x', '1 2', 's']) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(formatDuration(30_000), '30s');
  assert.equal(formatDuration(500), '500ms');
});

test('sizes: K, M, G with or without B', () => {
  assert.equal(parseSize('512M'), 512 * 1024 ** 2);
  assert.equal(parseSize('1G'), 1024 ** 3);
  assert.equal(parseSize('800k'), 800 * 1024);
  assert.equal(parseSize('64mb'), 64 * 1024 ** 2);
  assert.equal(parseSize('1000'), 1000);
  for (const bad of ['', 'M', '1T', '-5M', '1.2.3G']) assert.equal(parseSize(bad), undefined, bad);
});

test('did-you-mean finds near misses only', () => {
  assert.equal(didYouMean('--wokers', ['--workers', '--timeout']), '--workers');
  assert.equal(didYouMean('graceful_timout', ['graceful_timeout', 'timeout']), 'graceful_timeout');
  assert.equal(didYouMean('--zzzzzz', ['--workers', '--timeout']), undefined);
});

test('crash backoff doubles per quick crash, caps, and resets after a stable worker', () => {
  const b = new CrashBackoff(5000, 1000);
  assert.equal(b.recordExit(100), 100);
  assert.equal(b.recordExit(100), 200);
  assert.equal(b.recordExit(100), 400);
  assert.equal(b.recordExit(100), 800);
  assert.equal(b.recordExit(100), 1000);
  assert.equal(b.recordExit(100), 1000);
  assert.equal(b.recordExit(6000), 0);
  assert.equal(b.crashStreak, 0);
  b.recordExit(1);
  b.recordStable();
  assert.equal(b.delay(), 0);
});
