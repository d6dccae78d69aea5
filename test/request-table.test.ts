// Pure logic: the shared-memory table of in-flight requests (src/worker/request-table.ts), as the watchdog
// thread reads it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestTable, SLOTS, URL_BYTES } from '../src/worker/request-table';

test('oldestStart is the earliest start among taken slots, Infinity when none is taken', () => {
  const t = RequestTable.create();
  assert.equal(t.oldestStart(), Infinity);
  t.write(3, 11, 5_000, 'GET', '/a');
  t.write(0, 12, 2_000, 'POST', '/b');
  t.write(SLOTS - 1, 13, 9_000, 'GET', '/c');
  assert.equal(t.oldestStart(), 2_000);
  t.clear(0);
  assert.equal(t.oldestStart(), 5_000, 'a cleared slot no longer counts');
  t.clear(3);
  t.clear(SLOTS - 1);
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
