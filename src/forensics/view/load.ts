// Reading dumps back for the viewers. A dump on disk is input, not a promise: it may come from another
// superv version, be cut short, or be edited by hand. coerceDump() rebuilds a well-typed Dump from whatever
// JSON it finds, keeping what has the right shape and dropping the rest, so the renderers can trust their
// types. Records keyed by user data (locals, headers) get a null prototype: a local named `__proto__` stays a
// local.

import { promises as fs } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { DUMP_VERSION, type Capture, type Dump, type DumpReason, type Frame, type MasterView, type ProcView, type RequestInfo, type TcpPeer, type ValuePreview } from '../types';
import { listDumps } from '../write';

type Obj = Record<string, unknown>;

function obj(u: unknown): Obj | undefined {
  return typeof u === 'object' && u !== null && !Array.isArray(u) ? (u as Obj) : undefined;
}
const str = (u: unknown, d = ''): string => (typeof u === 'string' ? u : u === undefined || u === null ? d : String(u));
const optStr = (u: unknown): string | undefined => (u === undefined || u === null ? undefined : str(u));
const num = (u: unknown, d = 0): number => (typeof u === 'number' && Number.isFinite(u) ? u : d);
const optNum = (u: unknown): number | undefined => (typeof u === 'number' && Number.isFinite(u) ? u : undefined);

function list<T>(u: unknown, f: (o: Obj) => T | undefined): T[] {
  if (!Array.isArray(u)) return [];
  const out: T[] = [];
  for (const x of u) {
    const o = obj(x);
    const v = o && f(o);
    if (v !== undefined) out.push(v);
  }
  return out;
}

function record<T>(u: unknown, f: (v: unknown) => T | undefined): Record<string, T> | undefined {
  const o = obj(u);
  if (!o) return undefined;
  const out = Object.create(null) as Record<string, T>;
  for (const [k, v] of Object.entries(o)) {
    const x = f(v);
    if (x !== undefined) out[k] = x;
  }
  return out;
}

function request(o: Obj | undefined): RequestInfo | undefined {
  if (!o) return undefined;
  return {
    id: num(o.id), method: str(o.method, '?'), url: str(o.url), startedAt: num(o.startedAt), ageMs: num(o.ageMs),
    remote: optStr(o.remote), headers: record(o.headers, (v) => str(v)),
  };
}

function preview(u: unknown): ValuePreview | undefined {
  const o = obj(u);
  if (!o) return undefined;
  const props = record(o.props, (v) => str(v));
  return props ? { type: str(o.type), value: str(o.value), props } : { type: str(o.type), value: str(o.value) };
}

function frame(o: Obj): Frame {
  const orig = obj(o.original);
  const f: Frame = { function: str(o.function, '(anonymous)'), file: str(o.file), line: num(o.line), column: num(o.column), app: o.app === true };
  if (orig) f.original = { file: str(orig.file), line: num(orig.line), column: num(orig.column), name: optStr(orig.name) };
  const locals = record(o.locals, preview);
  if (locals) f.locals = locals;
  return f;
}

function capture(o: Obj | undefined): Capture | undefined {
  if (!o) return undefined;
  const loop = obj(o.loop);
  const eld = obj(o.eventLoopDelay);
  const state = obj(o.state);
  return {
    complete: o.complete === true, incomplete: optStr(o.incomplete), elapsedMs: num(o.elapsedMs),
    loop: { blocked: loop?.blocked === true, blockedForMs: num(loop?.blockedForMs) },
    running: request(obj(o.running)),
    inflight: list(o.inflight, request),
    inflightOverflow: optNum(o.inflightOverflow),
    stack: Array.isArray(o.stack) ? list(o.stack, frame) : undefined,
    heap: record(o.heap, optNum), memory: record(o.memory, optNum),
    eventLoopDelay: eld ? { meanMs: num(eld.meanMs), p99Ms: num(eld.p99Ms), maxMs: num(eld.maxMs) } : undefined,
    uptimeMs: optNum(o.uptimeMs), served: optNum(o.served),
    // Provider output is free-form by design; the renderers walk it as unknown.
    state: state ? (Object.assign(Object.create(null), state) as Record<string, unknown>) : undefined,
  };
}

function proc(o: Obj | undefined): ProcView {
  if (!o) return {};
  return {
    state: optStr(o.state), wchan: optStr(o.wchan), syscall: optStr(o.syscall), syscallName: optStr(o.syscallName),
    threads: Array.isArray(o.threads) ? list(o.threads, (t) => ({ tid: num(t.tid), name: str(t.name), state: str(t.state), wchan: optStr(t.wchan) })) : undefined,
    children: Array.isArray(o.children) ? list(o.children, (c) => ({ pid: num(c.pid), cmdline: str(c.cmdline), state: optStr(c.state), wchan: optStr(c.wchan) })) : undefined,
    tcp: Array.isArray(o.tcp)
      ? list(o.tcp, (t): TcpPeer => ({ local: str(t.local), remote: str(t.remote), state: str(t.state), rxQueue: num(t.rxQueue), txQueue: num(t.txQueue) }))
      : undefined,
    error: optStr(o.error),
  };
}

function master(o: Obj | undefined): MasterView {
  const hb = obj(o?.lastHeartbeat);
  return {
    cpuPercent: optNum(o?.cpuPercent), rss: optNum(o?.rss), proc: proc(obj(o?.proc)),
    lastHeartbeat: hb ? { ageMs: num(hb.ageMs), inflight: num(hb.inflight), oldest: list(hb.oldest, request) } : undefined,
  };
}

const REASONS: readonly string[] = ['timeout', 'slow', 'memory', 'manual'];
const ACTIONS: readonly string[] = ['killed', 'recycled', 'none'];

/** A Dump from parsed JSON; throws when it is not recognizably a superv dump. */
export function coerceDump(u: unknown): Dump {
  const o = obj(u);
  if (!o || typeof o.version !== 'number' || typeof o.reason !== 'string' || typeof o.time !== 'string') {
    throw new Error('not a superv dump (no version, reason and time)');
  }
  if (o.version > DUMP_VERSION) throw new Error(`dump version ${o.version} is newer than this superv understands (${DUMP_VERSION})`);
  const sup = obj(o.supervisor);
  const w = obj(o.worker);
  return {
    version: o.version,
    // A reason this version does not know (a newer writer) reads as `manual`: no rule of ours asked for it.
    reason: (REASONS.includes(o.reason) ? o.reason : 'manual') as DumpReason,
    time: o.time,
    summary: str(o.summary),
    supervisor: { name: str(sup?.name, '?'), pid: num(sup?.pid), app: str(sup?.app), host: str(sup?.host) },
    worker: { id: num(w?.id), pid: num(w?.pid), uptimeMs: num(w?.uptimeMs), served: num(w?.served) },
    request: request(obj(o.request)),
    capture: capture(obj(o.capture)),
    captureError: optStr(o.captureError),
    master: master(obj(o.master)),
    action: (ACTIONS.includes(str(o.action)) ? o.action : 'none') as Dump['action'],
  };
}

export function parseDump(text: string): Dump {
  let u: unknown;
  try {
    u = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`);
  }
  return coerceDump(u);
}

export interface LoadedDump {
  /** The file's base name: sorts by incident time. */
  name: string;
  path: string;
  dump: Dump;
}

/** Dumps bigger than this are not superv's (they are capped far below); reading one would only stall. */
const MAX_DUMP_BYTES = 32 * 2 ** 20;

export async function readDump(path: string): Promise<LoadedDump> {
  const st = await fs.stat(path);
  if (!st.isFile()) throw new Error('not a file');
  if (st.size > MAX_DUMP_BYTES) throw new Error(`${st.size} bytes: too big for a dump`);
  return { name: basename(path), path, dump: parseDump(await fs.readFile(path, 'utf8')) };
}

export interface DumpSet {
  dumps: LoadedDump[];
  /** One line per file that could not be read, for stderr: the others are still shown. */
  problems: string[];
}

/** Every dump in `dir` (oldest first), optionally only those of the supervisor named `name`. */
export async function loadDumps(dir: string, name?: string): Promise<DumpSet> {
  const out: DumpSet = { dumps: [], problems: [] };
  for (const f of await listDumps(dir)) {
    try {
      const d = await readDump(f.path);
      if (name === undefined || d.dump.supervisor.name === name) out.dumps.push(d);
    } catch (e) {
      // Deleted by rotation between the listing and the read: not a problem worth reporting.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.problems.push(`${f.name}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * The file `superv dumps show TARGET` means: `latest` (the newest dump in `dir`, of `name` when given), a
 * path, or a file name inside `dir`. Throws an Error saying what was looked for.
 */
export async function resolveDumpTarget(target: string, dir: string, name?: string): Promise<string> {
  if (target === 'latest') {
    const all = await loadDumps(dir, name);
    const last = all.dumps[all.dumps.length - 1];
    if (!last) throw new Error(`no dumps${name ? ` of ${name}` : ''} in ${dir}`);
    return last.path;
  }
  const candidates = isAbsolute(target) || target.includes('/') ? [resolve(target)] : [join(dir, target), resolve(target)];
  for (const c of candidates) {
    if (await fs.stat(c).then((s) => s.isFile(), () => false)) return c;
  }
  throw new Error(`no dump ${target} (looked in ${candidates.join(' and ')})`);
}
