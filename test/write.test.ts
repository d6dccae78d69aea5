import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { watch, promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DUMP_NAME, dumpFileName, listDumps } from '../src/dump/files';
import { pruneDumps, writeDump } from '../src/master/dump-write';
import { DUMP_VERSION, type Dump } from '../src/dump/types';

const roots: string[] = [];
after(async () => {
  for (const r of roots) await fs.rm(r, { recursive: true, force: true });
});

async function scratch(): Promise<string> {
  const r = await fs.mkdtemp(join(tmpdir(), 'superv-write-'));
  roots.push(r);
  return r;
}

function dump(time: string, extra: Partial<Dump> = {}): Dump {
  return {
    version: DUMP_VERSION,
    reason: 'timeout',
    time,
    summary: 'stuck',
    supervisor: { name: 'api', pid: 10, app: '/app/server.js', host: 'h' },
    worker: { id: 3, pid: 4242, uptimeMs: 1, served: 2 },
    master: { proc: {} },
    action: 'killed',
    ...extra,
  };
}

test('dumpFileName: UTC time without colons first, then name, worker, pid, reason', () => {
  const d = dump('2026-11-28T15:30:01.123Z');
  assert.equal(dumpFileName(d), '2026-11-28T15-30-01.123Z-api-w3-4242-timeout.json');
  assert.match(dumpFileName(d), DUMP_NAME);
  const odd = dump('2026-11-28T16:30:01.123+01:00', { supervisor: { name: '../x y:z', pid: 1, app: '', host: '' } });
  assert.equal(dumpFileName(odd), '2026-11-28T15-30-01.123Z-.._x_y_z-w3-4242-timeout.json');
  assert.match(dumpFileName(dump('not a date')), DUMP_NAME);
});

test('writeDump: 0700 dir, 0600 file, content round-trips', async () => {
  const dir = join(await scratch(), 'a', 'b');
  const d = dump('2026-11-28T15:30:01.123Z');
  const path = await writeDump(dir, d, 10);
  assert.equal(path, join(dir, '2026-11-28T15-30-01.123Z-api-w3-4242-timeout.json'));
  assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
  assert.equal((await fs.stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(await fs.readFile(path, 'utf8')), d);
  assert.deepEqual(await fs.readdir(dir), [path.slice(dir.length + 1)]);
});

test('writeDump: a dir of ours is never chmodded; one others can write is refused', async () => {
  const dir = join(await scratch(), 'dumps');
  await fs.mkdir(dir);
  await fs.chmod(dir, 0o755);
  await writeDump(dir, dump('2026-11-28T15:30:01.123Z'), 10);
  assert.equal((await fs.stat(dir)).mode & 0o777, 0o755, 'superv does not chmod a dir it did not create');
  await fs.chmod(dir, 0o777);
  await assert.rejects(writeDump(dir, dump('2026-11-28T15:30:02.123Z'), 10), /writable by group or others/);
});

test('writeDump: the dump name only ever appears complete (temp file + rename)', async () => {
  const dir = await scratch();
  const events: Array<{ type: string; name: string }> = [];
  const w = watch(dir, (type, name) => events.push({ type, name: String(name) }));
  try {
    // Big enough to take several write() calls, each of which inotify reports.
    const big = dump('2026-11-28T15:30:01.123Z', { summary: 'x'.repeat(4 << 20) });
    const path = await writeDump(dir, big, 10);
    await new Promise((r) => setTimeout(r, 100));
    const final = path.slice(dir.length + 1);
    const temps = events.filter((e) => e.name !== final).map((e) => e.name);
    assert.ok(temps.length > 0, 'the data went to another name first');
    for (const t of temps) assert.doesNotMatch(t, DUMP_NAME);
    assert.deepEqual(events.filter((e) => e.name === final).map((e) => e.type), ['rename']);
  } finally {
    w.close();
  }
});

test('writeDump: keeps the newest `keep` dumps, leaves other files alone, clears stale temps', async () => {
  const dir = await scratch();
  await fs.writeFile(join(dir, 'notes.txt'), 'x');
  await fs.writeFile(join(dir, 'other.json'), '{}');
  const stale = join(dir, '.2026-01-01T00-00-00.000Z-api-w1-1-timeout.json.dead.tmp');
  const fresh = join(dir, '.2026-01-01T00-00-00.000Z-api-w1-2-timeout.json.live.tmp');
  await fs.writeFile(stale, '{');
  await fs.writeFile(fresh, '{');
  const old = new Date(Date.now() - 2 * 3600_000);
  await fs.utimes(stale, old, old);
  // Written out of order: rotation goes by the time in the name, not by write order.
  for (const t of ['2026-11-28T15:30:03.000Z', '2026-11-28T15:30:01.000Z', '2026-11-28T15:30:05.000Z', '2026-11-28T15:30:02.000Z', '2026-11-28T15:30:04.000Z']) {
    await writeDump(dir, dump(t), 3);
  }
  const left = (await listDumps(dir)).map((d) => d.name.slice(0, 24));
  assert.deepEqual(left, ['2026-11-28T15-30-03.000Z', '2026-11-28T15-30-04.000Z', '2026-11-28T15-30-05.000Z']);
  const all = await fs.readdir(dir);
  assert.ok(all.includes('notes.txt') && all.includes('other.json'));
  assert.ok(!all.includes(stale.slice(dir.length + 1)), 'stale temp removed');
  assert.ok(all.includes(fresh.slice(dir.length + 1)), 'a temp being written right now is left alone');
});

test('pruneDumps: never deletes the last dump, even with keep 0', async () => {
  const dir = await scratch();
  await writeDump(dir, dump('2026-11-28T15:30:01.000Z'), 5);
  await writeDump(dir, dump('2026-11-28T15:30:02.000Z'), 5);
  const deleted = await pruneDumps(dir, 0);
  assert.equal(deleted.length, 1);
  assert.deepEqual((await listDumps(dir)).map((d) => d.name.slice(0, 24)), ['2026-11-28T15-30-02.000Z']);
});

test('listDumps: newest last, paths joined', async () => {
  const dir = await scratch();
  await writeDump(dir, dump('2026-11-28T15:30:02.000Z'), 5);
  await writeDump(dir, dump('2026-11-28T15:30:01.000Z'), 5);
  const l = await listDumps(dir);
  assert.deepEqual(l.map((d) => d.path), l.map((d) => join(dir, d.name)));
  assert.ok((l[0]?.name ?? '') < (l[1]?.name ?? ''));
});

test('writeDump: an unwritable dir rejects with the path in the message (even as root)', async () => {
  const root = await scratch();
  const file = join(root, 'plain-file');
  await fs.writeFile(file, 'x');
  // A path below a regular file fails with ENOTDIR whatever the privileges.
  await assert.rejects(writeDump(join(file, 'dumps'), dump('2026-11-28T15:30:01.123Z'), 5), (e: Error & { code?: string }) => {
    assert.match(e.message, /cannot write dump .*plain-file\/dumps\/2026-11-28T15-30-01\.123Z-api-w3-4242-timeout\.json/);
    assert.equal(e.code, 'ENOTDIR');
    return true;
  });
  // The dir itself being a file.
  await assert.rejects(writeDump(file, dump('2026-11-28T15:30:01.123Z'), 5), /cannot write dump .*plain-file\//);
});
