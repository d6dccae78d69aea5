// Pure logic: the shared-memory table of in-flight requests (src/worker/request-table.ts), as the watchdog
// thread reads it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { H_HWM, H_TICK, MAX_SLOTS, RequestTable, URL_BYTES } from '../src/worker/request-table';

test('oldestStart is the earliest start among taken slots, Infinity when none is taken', () => {
  const t = RequestTable.create();
  assert.equal(t.oldestStart(), Infinity);
  t.write(3, 11, 5_000, 'GET', '/a');
  t.write(0, 12, 2_000, 'POST', '/b');
  t.write(MAX_SLOTS - 1, 13, 9_000, 'GET', '/c');
  assert.equal(t.oldestStart(), 2_000);
  t.clear(0);
  assert.equal(t.oldestStart(), 5_000, 'a cleared slot no longer counts');
  t.clear(3);
  t.clear(MAX_SLOTS - 1);
  assert.equal(t.oldestStart(), Infinity);
});

test('snapshot decodes method and URL, oldest first; URLs are cut at URL_BYTES', () => {
  const t = RequestTable.create();
  t.write(5, 21, 3_000, 'DELETE', '/orders/7?x=1');
  t.write(1, 22, 1_000, 'PROPFIND', '/dav/ünï');
  t.write(2, 23, 2_000, 'GET', '/' + 'a'.repeat(URL_BYTES + 50));
  const snap = t.snapshot(4_000);
  assert.deepEqual(snap.map((r) => [r.id, r.method, r.ageMs]), [[22, 'OTHER', 3_000], [23, 'GET', 2_000], [21, 'DELETE', 1_000]]);
  assert.equal(snap[0]!.url, '/dav/ünï', 'non-ASCII URLs go through the encoder');
  assert.equal(snap[1]!.url.length, URL_BYTES);
  assert.equal(snap[2]!.url, '/orders/7?x=1');
});

test('readers scan to the high-water mark only; a write marks the stream with the tick clock', () => {
  const t = RequestTable.create();
  assert.equal(t.header[H_HWM], 0);
  t.write(0, 31, 1_000, 'GET', '/events');
  t.write(7, 32, 1_500, 'GET', '/a');
  assert.equal(t.header[H_HWM], 8, 'one past the highest slot used');
  t.header[H_TICK] = 1_800;
  t.wrote(0);
  const snap = t.snapshot(2_000);
  assert.equal(snap[0]!.lastWriteMs, 200, 'time since the last write, by the tick clock');
  assert.equal(snap[1]!.lastWriteMs, undefined, 'no write yet: not a stream');
  t.write(0, 33, 1_900, 'GET', '/b');
  assert.equal(t.snapshot(2_000)[1]!.lastWriteMs, undefined, 'a new request in the slot starts with no write');
});

test('the watchdog mark follows the request, not the slot', () => {
  const t = RequestTable.create();
  t.write(2, 41, 1_000, 'GET', '/poll');
  const seen = () => { const out: Array<[number, number]> = []; t.forEachTimes((x) => { out.push([x.id, x.seen]); }); return out; };
  assert.deepEqual(seen(), [[41, 0]]);
  t.markSeen(2, 41);
  assert.deepEqual(seen(), [[41, 41]]);
  t.clear(2);
  t.write(2, 42, 2_000, 'GET', '/poll');
  assert.deepEqual(seen(), [[42, 0]], 'the next request in the slot is unmarked');
});
