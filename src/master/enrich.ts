// The master's own view of a worker at dump time, read from /proc without asking the worker: it is what is
// left when the main thread is stuck in native code and the watchdog cannot reach it. What it can tell
// (checked by test/enrich.test.ts): a busy loop shows `R` + `running`; execSync shows an idle-looking
// epoll_wait with an infinite timeout plus a child in do_wait; sockets resolve through /proc/PID/net/tcp*.
//
// Never throws and never outlives `timeoutMs`: every read has its own catch, and the whole is raced against
// one deadline. A /proc read can block (cmdline of a process whose mm lock is held); then it keeps a libuv
// pool thread until it returns, but this function answers on time with what it has.

import { promises as fs } from 'node:fs';
import { endianness } from 'node:os';
import { syscallName } from './procsys';
import type { MasterView, ProcView, TcpPeer } from '../dump/types';

export interface MasterViewOptions {
  /** Deadline for the whole view. Default 500 ms. */
  timeoutMs?: number;
  /** Gap between the two CPU samples. Default min(200, timeoutMs / 2). */
  cpuSampleMs?: number;
}

// Bounds on what one dump carries, whatever the worker has open.
const MAX_THREADS = 64;
const MAX_CHILDREN = 32;
const MAX_FDS = 4096;
const MAX_TCP = 256;
const MAX_CMDLINE = 512;

const TCP_STATES: Readonly<Record<number, string>> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT', 7: 'CLOSE',
  8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW_SYN_RECV',
};

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function read(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** State and command name from a `stat` line; the name may itself contain spaces and parentheses. */
export function parseStat(text: string): { name: string; state: string } | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const state = text.slice(close + 2).split(' ')[0];
  return state ? { name: text.slice(open + 1, close), state } : undefined;
}

async function wchan(dir: string): Promise<string | undefined> {
  const w = (await read(`${dir}/wchan`))?.trim();
  // "0" is what a running task shows: no wait channel, and `state` already says so.
  return w === undefined || w === '' || w === '0' ? undefined : w;
}

async function readMain(pid: number, proc: ProcView): Promise<void> {
  const [stat, w, sys] = await Promise.all([read(`/proc/${pid}/stat`), wchan(`/proc/${pid}`), read(`/proc/${pid}/syscall`)]);
  const st = stat === undefined ? undefined : parseStat(stat);
  if (st !== undefined) proc.state = st.state;
  if (w !== undefined) proc.wchan = w;
  if (sys !== undefined) {
    proc.syscall = sys.trim();
    const first = proc.syscall.split(' ')[0] ?? '';
    // "-1 …": not in a syscall and not on a CPU (preempted in user code).
    const name = first === 'running' ? 'running' : /^\d+$/.test(first) ? syscallName(Number(first)) : undefined;
    if (name !== undefined) proc.syscallName = name;
  }
}

async function tids(pid: number): Promise<number[]> {
  const names = await fs.readdir(`/proc/${pid}/task`);
  return names.filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

async function readThreads(pid: number, proc: ProcView): Promise<void> {
  const threads = await Promise.all(
    (await tids(pid)).slice(0, MAX_THREADS).map(async (tid) => {
      const dir = `/proc/${pid}/task/${tid}`;
      const [stat, w] = await Promise.all([read(`${dir}/stat`), wchan(dir)]);
      const st = stat === undefined ? undefined : parseStat(stat);
      // A thread that exited between readdir and read is simply not reported.
      return st === undefined ? undefined : { tid, name: st.name, state: st.state, ...(w !== undefined ? { wchan: w } : {}) };
    }),
  );
  proc.threads = threads.filter((t) => t !== undefined);
}

async function readChildren(pid: number, proc: ProcView): Promise<void> {
  const lists = await Promise.all((await tids(pid)).map((tid) => read(`/proc/${pid}/task/${tid}/children`)));
  const pids = [...new Set(lists.flatMap((l) => (l ?? '').split(/\s+/).filter((s) => /^\d+$/.test(s)).map(Number)))];
  proc.children = await Promise.all(
    pids.slice(0, MAX_CHILDREN).map(async (child) => {
      const dir = `/proc/${child}`;
      const [cmd, stat, w] = await Promise.all([read(`${dir}/cmdline`), read(`${dir}/stat`), wchan(dir)]);
      const st = stat === undefined ? undefined : parseStat(stat);
      const cmdline = (cmd ?? '').replace(/\0/g, ' ').trim().slice(0, MAX_CMDLINE) || (st ? `[${st.name}]` : '');
      return { pid: child, cmdline, ...(st ? { state: st.state } : {}), ...(w !== undefined ? { wchan: w } : {}) };
    }),
  );
}

function hexBytes(hex: string): number[] {
  const out: number[] = [];
  // /proc prints each 32-bit word in host byte order.
  for (let i = 0; i < hex.length; i += 8) {
    const word = (hex.slice(i, i + 8).match(/../g) ?? []).map((b) => parseInt(b, 16));
    out.push(...(endianness() === 'LE' ? word.reverse() : word));
  }
  return out;
}

/** `0100007F:1F90` → `127.0.0.1:8080`; IPv6 as `[::1]:8080`; IPv4-mapped IPv6 as plain IPv4. */
export function decodeAddress(field: string): string {
  const [hex = '', portHex = ''] = field.split(':');
  const port = parseInt(portHex, 16);
  const b = hexBytes(hex);
  const mapped = b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (b.length === 4 || mapped) return `${b.slice(-4).join('.')}:${port}`;
  const groups: string[] = [];
  for (let i = 0; i < b.length; i += 2) groups.push((((b[i] ?? 0) << 8) | (b[i + 1] ?? 0)).toString(16));
  // The WHATWG URL parser compresses an IPv6 address to its canonical form.
  return `${new URL(`http://[${groups.join(':')}]/`).hostname}:${port}`;
}

/** The rows of a /proc/net/tcp or tcp6 table whose socket inode is in `inodes`. */
export function parseTcpTable(text: string, inodes: ReadonlySet<string>): TcpPeer[] {
  const peers: TcpPeer[] = [];
  for (const line of text.split('\n').slice(1)) {
    const peer = parseTcpRow(line, inodes);
    if (peer) peers.push(peer);
  }
  return peers;
}

function parseTcpRow(line: string, inodes: ReadonlySet<string>): TcpPeer | undefined {
  const f = line.trim().split(/\s+/);
  const [local, remote, st, queues, inode] = [f[1], f[2], f[3], f[4], f[9]];
  if (!local || !remote || !st || !queues || !inode || !inodes.has(inode)) return undefined;
  const [tx = '0', rx = '0'] = queues.split(':');
  const code = parseInt(st, 16);
  return {
    local: decodeAddress(local),
    remote: decodeAddress(remote),
    state: TCP_STATES[code] ?? `0x${st}`,
    rxQueue: parseInt(rx, 16),
    txQueue: parseInt(tx, 16),
  };
}

const TCP_CHUNK = 64 * 1024;
const NL = 0x0a;
const SPACE = 0x20;
/** The inode is the 10th whitespace-separated field of a row. */
const INODE_FIELD = 9;

/** The inode of the row in buf[start, end), as a number, without making a string (NaN when malformed). */
function rowInode(buf: Buffer, start: number, end: number): number {
  let field = -1;
  let inSpace = true;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === SPACE || c === 0x09) { inSpace = true; continue; }
    if (inSpace) { inSpace = false; field++; }
    if (field === INODE_FIELD) {
      let n = 0;
      for (; i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39; i++) n = n * 10 + (buf[i]! - 0x30);
      return n;
    }
  }
  return NaN;
}

/**
 * The rows of a /proc/net/tcp table whose inode is in `inodes`, read in fixed chunks. The table lists every
 * socket of the namespace (11,000 rows, 1.6 MB on a busy test host): read whole for each dump, as it was, it
 * made a 1.6 MB buffer, a 1.6 MB string and some 200,000 small strings per dump, and the master's heap and
 * RSS grew with the kills (the soak's RSS growth). Here a row becomes a string only when its inode matches.
 */
async function readTcpTable(path: string, inodes: ReadonlySet<string>): Promise<TcpPeer[]> {
  const wanted = new Set([...inodes].map(Number));
  const peers: TcpPeer[] = [];
  const fh = await fs.open(path, 'r').catch(() => undefined);
  if (!fh) return peers;
  try {
    const buf = Buffer.allocUnsafe(TCP_CHUNK);
    let have = 0;
    let header = true;
    for (;;) {
      const { bytesRead } = await fh.read(buf, have, TCP_CHUNK - have, null);
      const end = have + bytesRead;
      let start = 0;
      for (let nl = buf.indexOf(NL, start); nl >= 0 && nl < end; nl = buf.indexOf(NL, start)) {
        if (header) header = false;
        else if (wanted.has(rowInode(buf, start, nl))) {
          const peer = parseTcpRow(buf.toString('latin1', start, nl), inodes);
          if (peer) peers.push(peer);
        }
        start = nl + 1;
      }
      // A row cut by the chunk's end moves to the front; a row longer than a chunk is not a tcp row.
      have = end - start < TCP_CHUNK ? end - start : 0;
      buf.copy(buf, 0, start, start + have);
      if (bytesRead === 0 || peers.length >= MAX_TCP) break;
    }
  } finally {
    await fh.close();
  }
  return peers;
}

async function readTcp(pid: number, proc: ProcView): Promise<void> {
  const fds = (await fs.readdir(`/proc/${pid}/fd`)).slice(0, MAX_FDS);
  const links = await Promise.all(fds.map((fd) => fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  const inodes = new Set(links.map((l) => /^socket:\[(\d+)\]$/.exec(l)?.[1]).filter((i) => i !== undefined));
  if (inodes.size === 0) {
    proc.tcp = [];
    return;
  }
  // The worker's own network namespace, which may not be the master's.
  const tables = await Promise.all([readTcpTable(`/proc/${pid}/net/tcp`, inodes), readTcpTable(`/proc/${pid}/net/tcp6`, inodes)]);
  proc.tcp = tables.flat().slice(0, MAX_TCP);
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
const PAGE_SIZE = 4096;

/** utime + stime (ticks) and RSS (pages) from /proc/PID/stat. */
async function cpuAndRss(pid: number): Promise<{ ticks: number; rssPages: number } | undefined> {
  const text = await read(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields after the name, 0-based: 11 utime, 12 stime, 21 rss.
  return { ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) };
}

// Not pidusage here: it keeps /proc/PID/stat open for a minute per pid, and a dumped worker is usually
// about to be killed, so under a stream of kills the master's fds grew with every one (the soak showed
// it). Two reads `gapMs` apart give the CPU % of that moment, with nothing left open.
async function readUsage(pid: number, view: MasterView, gapMs: number): Promise<void> {
  const a = await cpuAndRss(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, gapMs).unref());
  const b = await cpuAndRss(pid);
  if (!a || !b) throw new Error('cannot read /proc/PID/stat');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  view.cpuPercent = Math.round(((b.ticks - a.ticks) / CLOCK_TICKS / seconds) * 1000) / 10;
  view.rss = b.rssPages * PAGE_SIZE;
}

/** What /proc and pidusage say about worker `pid`. Resolves within `timeoutMs`; errors go to `proc.error`. */
export async function masterView(pid: number, opts: MasterViewOptions = {}): Promise<MasterView> {
  const timeoutMs = opts.timeoutMs ?? 500;
  const gapMs = opts.cpuSampleMs ?? Math.min(200, timeoutMs / 2);
  if (!Number.isInteger(pid) || pid <= 0) return { proc: { error: `not a pid: ${pid}` } };
  try {
    await fs.access(`/proc/${pid}`);
  } catch {
    return { proc: { error: `no process ${pid} in /proc` } };
  }
  const view: MasterView = { proc: {} };
  const errors: string[] = [];
  const part = (what: string, p: Promise<void>): Promise<void> => p.catch((e) => void errors.push(`${what}: ${message(e)}`));
  const all = Promise.all([
    part('stat', readMain(pid, view.proc)),
    part('threads', readThreads(pid, view.proc)),
    part('children', readChildren(pid, view.proc)),
    part('tcp', readTcp(pid, view.proc)),
    part('cpu', readUsage(pid, view, gapMs)),
  ]);
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    all.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
  ]);
  clearTimeout(timer);
  // Parts still running after the deadline write into `view`, not into what we return.
  const out: MasterView = { ...view, proc: { ...view.proc } };
  if (late) errors.push(`timed out after ${timeoutMs} ms: partial view`);
  if (out.proc.state === undefined && !late) errors.push(`could not read /proc/${pid}/stat`);
  if (errors.length > 0) out.proc.error = errors.join('; ');
  return out;
}
