import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { decodeAddress, masterView, parseStat, parseTcpTable } from '../src/master/enrich';
import { syscallName } from '../src/master/procsys';
import type { MasterView } from '../src/dump/types';

const spawned: ChildProcess[] = [];
const cleanups: Array<() => void> = [];

function descendants(pid: number): number[] {
  let kids: number[] = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return kids.flatMap((k) => [...descendants(k), k]);
}

// By PID only: the test's own children, and what they spawned (the `sleep` of execSync), deepest first.
after(() => {
  for (const c of cleanups) c();
  for (const c of spawned) {
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
    for (const d of descendants(c.pid)) {
      try {
        process.kill(d, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    c.kill('SIGKILL');
  }
});

function node(code: string): ChildProcess {
  const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  spawned.push(c);
  return c;
}

/** Samples the view until `ok` holds; returns the last view either way, for the assertions to explain. */
async function sample(pid: number, ok: (v: MasterView) => boolean, tries = 40): Promise<MasterView> {
  let v = await masterView(pid);
  for (let i = 1; i < tries && !ok(v); i++) {
    await new Promise((r) => setTimeout(r, 100));
    v = await masterView(pid);
  }
  return v;
}

test('procsys: x86_64 names, none for other arches or unknown numbers', () => {
  assert.equal(syscallName(232, 'x64'), 'epoll_wait');
  assert.equal(syscallName(281, 'x64'), 'epoll_pwait');
  assert.equal(syscallName(202, 'x64'), 'futex');
  assert.equal(syscallName(61, 'x64'), 'wait4');
  assert.equal(syscallName(257, 'x64'), 'openat');
  assert.equal(syscallName(0, 'x64'), 'read');
  assert.equal(syscallName(232, 'arm64'), undefined);
  assert.equal(syscallName(99999, 'x64'), undefined);
  assert.equal(syscallName(-1, 'x64'), undefined);
});

test('parseStat: command names with spaces and parentheses', () => {
  assert.deepEqual(parseStat('123 (node) S 1 2 3'), { name: 'node', state: 'S' });
  assert.deepEqual(parseStat('123 (a) b (c)) R 1 2'), { name: 'a) b (c)', state: 'R' });
  assert.equal(parseStat('garbage'), undefined);
});

test('decodeAddress and parseTcpTable: little-endian IPv4, IPv6, IPv4-mapped, states, queues', { skip: endianness() !== 'LE' }, () => {
  assert.equal(decodeAddress('0100007F:1F90'), '127.0.0.1:8080');
  assert.equal(decodeAddress('00000000:0000'), '0.0.0.0:0');
  assert.equal(decodeAddress('00000000000000000000000001000000:0050'), '[::1]:80');
  assert.equal(decodeAddress('00000000000000000000000000000000:01BB'), '[::]:443');
  assert.equal(decodeAddress('0000000000000000FFFF00000100007F:1F90'), '127.0.0.1:8080');
  assert.equal(decodeAddress('B80D0120000000000000000001000000:0016'), '[2001:db8::1]:22');
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0',
    '   1: 0100007F:B0A2 0100007F:1F90 01 00000010:00000020 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1',
    '   2: 0100007F:B0A3 0100007F:1F90 06 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1',
    '',
  ].join('\n');
  assert.deepEqual(parseTcpTable(table, new Set(['111', '222'])), [
    { local: '127.0.0.1:8080', remote: '0.0.0.0:0', state: 'LISTEN', rxQueue: 5, txQueue: 0 },
    { local: '127.0.0.1:45218', remote: '127.0.0.1:8080', state: 'ESTABLISHED', rxQueue: 32, txQueue: 16 },
  ]);
  assert.deepEqual(parseTcpTable(table, new Set()), []);
});

test('a child blocked in execSync: sleeping, waiting in epoll, its shell child named', async () => {
  const c = node("require('child_process').execSync('sleep 5')");
  const pid = c.pid ?? 0;
  const v = await sample(pid, (x) => (x.proc.children ?? []).some((k) => k.cmdline.includes('sleep 5')));
  const child = v.proc.children?.find((k) => k.cmdline.includes('sleep 5'));
  assert.ok(child, JSON.stringify(v));
  assert.ok(child.pid > 0);
  assert.equal(v.proc.state, 'S');
  assert.match(v.proc.syscallName ?? '', /^epoll_(p)?wait2?$/, v.proc.syscall);
  // Node's private loop for execSync waits in epoll_wait with no timeout.
  assert.match(v.proc.syscall ?? '', /0xffffffff/);
  assert.ok(v.proc.threads?.some((t) => t.tid === pid), 'the main thread is listed');
  assert.ok((v.proc.threads?.length ?? 0) > 1, 'node has helper threads');
  assert.ok((v.rss ?? 0) > 1 << 20);
  assert.equal(v.proc.error, undefined);
});

test('a child in a busy loop: running, on CPU', async () => {
  const c = node('for (;;) {}');
  const pid = c.pid ?? 0;
  // The first masterView of a pid must report CPU by itself, from its own two samples.
  for (let i = 0; i < 50 && !/\) R /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const first = await masterView(pid);
  // A spinning process gets well over this even on a loaded 2-core machine; an idle one reads 0.
  assert.ok((first.cpuPercent ?? 0) > 5, JSON.stringify(first));
  const v = await sample(pid, (x) => x.proc.state === 'R' && x.proc.syscallName === 'running');
  assert.equal(v.proc.state, 'R', JSON.stringify(v));
  assert.equal(v.proc.syscallName, 'running');
  assert.equal(v.proc.wchan, undefined);
});

test('TCP peers: an outgoing connection, a listener on ::, and an IPv4 client of it', async () => {
  const server = createServer();
  const accepted: Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of accepted) s.destroy();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  // The child dials us, listens on :: and leaves what we send it unread (pauseOnConnect).
  const c = node(`
    const net = require('net');
    net.connect(${port}, '127.0.0.1');
    const l = net.createServer({ pauseOnConnect: true }).listen(0, '::', () => console.log(l.address().port));
  `);
  const [line] = (await once(c.stdout ?? c, 'data')) as [Buffer];
  const childPort = Number(String(line).trim());
  const client = connect(childPort, '127.0.0.1');
  cleanups.push(() => client.destroy());
  await once(client, 'connect');
  client.write(Buffer.alloc(1000, 1));
  while (accepted.length === 0) await once(server, 'connection');
  const dialer = accepted[0]?.remotePort;
  const want = (x: MasterView): boolean =>
    (x.proc.tcp ?? []).some((p) => p.local === `127.0.0.1:${childPort}` && p.rxQueue === 1000);
  const v = await sample(c.pid ?? 0, want);
  const tcp = v.proc.tcp ?? [];
  const why = JSON.stringify(tcp);
  assert.ok(
    tcp.some((p) => p.remote === `127.0.0.1:${port}` && p.local === `127.0.0.1:${dialer}` && p.state === 'ESTABLISHED'),
    why,
  );
  assert.ok(tcp.some((p) => p.local === `[::]:${childPort}` && p.state === 'LISTEN'), why);
  // Accepted on an IPv6 socket from an IPv4 client: the mapped address comes out as plain IPv4.
  assert.ok(
    tcp.some(
      (p) => p.local === `127.0.0.1:${childPort}` && p.remote === `127.0.0.1:${client.localPort}` &&
        p.state === 'ESTABLISHED' && p.rxQueue === 1000,
    ),
    why,
  );
  // Only the child's own sockets: our listening socket is not one of them.
  assert.ok(!tcp.some((p) => p.local === `127.0.0.1:${port}`), why);
});

test('a dead or invalid pid: an error, no throw', async () => {
  const c = node('');
  await once(c, 'exit');
  const gone = await masterView(c.pid ?? 0);
  assert.match(gone.proc.error ?? '', /no process/);
  assert.equal(gone.proc.state, undefined);
  assert.match((await masterView(-5)).proc.error ?? '', /not a pid/);
  assert.match((await masterView(1.5)).proc.error ?? '', /not a pid/);
});

test('the deadline holds: a partial view and a note, on time', async () => {
  const t0 = Date.now();
  // The CPU sample (20 s) cannot finish by the deadline; the /proc reads can, even on a loaded machine (1.5 s).
  const v = await masterView(process.pid, { timeoutMs: 1500, cpuSampleMs: 20_000 });
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  assert.match(v.proc.error ?? '', /timed out after 1500 ms/);
  assert.equal(v.cpuPercent, undefined);
  assert.ok(v.proc.state !== undefined, 'the fast parts made it');
});
