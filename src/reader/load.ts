// Reading dumps back for the viewers. A dump on disk is input, not a promise: it may come from another
// superv version, be cut short, or be edited by hand. coerceDump() rebuilds a well-typed Dump from whatever
// JSON it finds, keeping what has the right shape and dropping the rest, so the renderers can trust their
// types. Records keyed by user data (locals, headers) get a null prototype: a local named `__proto__` stays a
// local.

import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { DbKind, LockHolder, LockLookup, LockWait, OwnHolder } from '../dump/locks';
import { type DumpCpu,
  DUMP_VERSION, type BlockedWaiter, type Capture, type CrashError, type CrashInfo, type CrashKind, type Dump, type DumpReason, type Frame,
  type InflightMore, type MasterView, type ProcView, type RequestInfo, type TcpPeer, type TraceIds, type ValuePreview,
} from '../dump/types';
import { validSpanId, validTraceId } from '../dump/trace';
import { listDumps } from '../dump/files';

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

/** Only well-formed ids survive: the renderers may then put them in a link, and nothing else gets there. */
function trace(o: Obj | undefined): TraceIds | undefined {
  if (!o || !validTraceId(o.traceId) || !validSpanId(o.spanId)) return undefined;
  return { traceId: o.traceId, spanId: o.spanId, from: o.from === 'otel' ? 'otel' : 'traceparent' };
}

function request(o: Obj | undefined): RequestInfo | undefined {
  if (!o) return undefined;
  const r: RequestInfo = {
    id: num(o.id), method: str(o.method, '?'), url: str(o.url), startedAt: num(o.startedAt), ageMs: num(o.ageMs),
    lastWriteMs: optNum(o.lastWriteMs), remote: optStr(o.remote), headers: record(o.headers, (v) => str(v)),
  };
  const t = trace(obj(o.trace));
  if (t) r.trace = t;
  return r;
}

/** Requests counted, not listed; dumps before the per-route counts carried only a number (`inflightOverflow`). */
function inflightMore(o: Obj): InflightMore | undefined {
  const more = obj(o.inflightMore);
  if (more) {
    const byRoute = list(more.byRoute, (r) => ({ route: str(r.route), count: num(r.count) }));
    return { count: num(more.count), byRoute };
  }
  const old = optNum(o.inflightOverflow);
  return old ? { count: old, byRoute: [] } : undefined;
}

function preview(u: unknown): ValuePreview | undefined {
  const o = obj(u);
  if (!o) return undefined;
  const props = record(o.props, (v) => str(v));
  const v: ValuePreview = props ? { type: str(o.type), value: str(o.value), props } : { type: str(o.type), value: str(o.value) };
  const size = optNum(o.size);
  if (size !== undefined) v.size = size;
  return v;
}

function frame(o: Obj): Frame {
  const orig = obj(o.original);
  const f: Frame = { function: str(o.function, '(anonymous)'), file: str(o.file), line: num(o.line), column: num(o.column), app: o.app === true };
  if (orig) f.original = { file: str(orig.file), line: num(orig.line), column: num(orig.column), name: optStr(orig.name) };
  const locals = record(o.locals, preview);
  if (locals) f.locals = locals;
  if (Array.isArray(o.localsMissing)) f.localsMissing = o.localsMissing.map((m) => str(m));
  return f;
}

const optBool = (u: unknown): true | undefined => (u === true ? true : undefined);
const strs = (u: unknown): string[] | undefined => (Array.isArray(u) ? u.filter((x): x is string => typeof x === 'string') : undefined);

function ownHolder(o: Obj | undefined): OwnHolder | undefined {
  if (!o) return undefined;
  return {
    workerPid: num(o.workerPid), workerId: optNum(o.workerId), requestId: optNum(o.requestId), method: optStr(o.method), url: optStr(o.url),
    requestAgeMs: optNum(o.requestAgeMs), statements: strs(o.statements), dump: optStr(o.dump),
  };
}

function holder(o: Obj): LockHolder {
  return {
    serverId: num(o.serverId), state: optStr(o.state), query: optStr(o.query), queryIsLast: optBool(o.queryIsLast),
    queryUnknown: optBool(o.queryUnknown), queryHidden: optStr(o.queryHidden), txAgeMs: optNum(o.txAgeMs), application: optStr(o.application), client: optStr(o.client),
    user: optStr(o.user), database: optStr(o.database), lock: optStr(o.lock), blocking: optNum(o.blocking), ours: ownHolder(obj(o.ours)),
  };
}

function site(o: Obj | undefined): LockWait['site'] {
  return o ? { function: str(o.function), file: str(o.file), line: num(o.line) } : undefined;
}

function lockWait(o: Obj): LockWait {
  return {
    kind: (o.kind === 'mysql' ? 'mysql' : 'postgres') as DbKind, serverId: num(o.serverId), connection: optNum(o.connection),
    sql: optStr(o.sql), requestId: optNum(o.requestId), site: site(obj(o.site)), waitedMs: optNum(o.waitedMs), waitingFor: optStr(o.waitingFor),
    chain: list(o.chain, holder), otherBlockers: Array.isArray(o.otherBlockers) ? o.otherBlockers.filter((x): x is number => typeof x === 'number') : undefined,
    chainCut: optStr(o.chainCut), sentence: str(o.sentence),
  };
}

function locks(o: Obj | undefined): LockLookup | undefined {
  if (!o) return undefined;
  return { server: optStr(o.server), elapsedMs: optNum(o.elapsedMs), waits: list(o.waits, lockWait), missing: strs(o.missing) };
}

function blockedWaiter(o: Obj): BlockedWaiter {
  return {
    workerPid: num(o.workerPid), requestId: optNum(o.requestId), method: optStr(o.method), url: optStr(o.url), sql: optStr(o.sql),
    waitedMs: optNum(o.waitedMs), holderServerId: num(o.holderServerId), dump: optStr(o.dump),
  };
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
    inflightMore: inflightMore(o),
    stack: Array.isArray(o.stack) ? list(o.stack, frame) : undefined,
    heap: record(o.heap, optNum), memory: record(o.memory, optNum),
    eventLoopDelay: eld ? { meanMs: num(eld.meanMs), p99Ms: num(eld.p99Ms), maxMs: num(eld.maxMs) } : undefined,
    uptimeMs: optNum(o.uptimeMs), served: optNum(o.served),
    // Provider output is free-form by design; the renderers walk it as unknown.
    state: state ? (Object.assign(Object.create(null), state) as Record<string, unknown>) : undefined,
    locks: locks(obj(o.locks)),
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

const KINDS: readonly string[] = ['uncaught-exception', 'unhandled-rejection', 'out-of-memory', 'exit-called', 'signal'];

function crashError(o: Obj | undefined, depth = 0): CrashError | undefined {
  if (!o) return undefined;
  const e: CrashError = { type: str(o.type, '?'), message: str(o.message) };
  if (Array.isArray(o.stack)) e.stack = list(o.stack, frame);
  if (Array.isArray(o.cause) && depth === 0) e.cause = list(o.cause, (c) => crashError(c, 1));
  return e;
}

function crash(o: Obj | undefined): CrashInfo | undefined {
  if (!o) return undefined;
  const call = obj(o.exitCall);
  const basis = str(o.requestBasis);
  return {
    kind: (KINDS.includes(str(o.kind)) ? o.kind : 'signal') as CrashKind,
    exitCode: optNum(o.exitCode) ?? null, signal: optStr(o.signal) ?? null, cause: str(o.cause), fingerprint: str(o.fingerprint, '?'),
    error: crashError(obj(o.error)),
    exitCall: call ? { fn: call.fn === 'abort' ? 'abort' : 'exit', code: optNum(call.code), stack: list(call.stack, frame) } : undefined,
    requestBasis: basis === 'context' || basis === 'only-inflight' || basis === 'oldest-inflight' ? basis : undefined,
    collateral: num(o.collateral),
    stderrTail: optStr(o.stderrTail),
    heapSpaces: record(o.heapSpaces, (v) => record(v, optNum)),
    memoryDump: optStr(o.memoryDump),
    suppressed: optNum(o.suppressed), occurrences: optNum(o.occurrences),
  };
}

const REASONS: readonly string[] = ['timeout', 'slow', 'memory', 'manual', 'crash'];
const ACTIONS: readonly string[] = ['killed', 'recycled', 'replaced', 'none'];

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
    supervisor: { name: str(sup?.name, '?'), pid: num(sup?.pid), app: str(sup?.app), host: str(sup?.host), traceUrl: optStr(sup?.traceUrl) },
    worker: {
      id: num(w?.id), pid: num(w?.pid), uptimeMs: num(w?.uptimeMs), served: num(w?.served), index: optNum(w?.index),
      kind: w?.kind === 'background' ? 'background' : w?.kind === 'http' ? 'http' : undefined, booting: w?.booting === true || undefined,
    },
    request: request(obj(o.request)),
    collateral: Array.isArray(o.collateral) ? list(o.collateral, request) : undefined,
    capture: capture(obj(o.capture)),
    captureError: optStr(o.captureError),
    master: master(obj(o.master)),
    action: (ACTIONS.includes(str(o.action)) ? o.action : 'none') as Dump['action'],
    blocks: Array.isArray(o.blocks) ? list(o.blocks, blockedWaiter) : undefined,
    crash: crash(obj(o.crash)),
    cpu: dumpCpu(obj(o.cpu)),
  };
}

function dumpCpu(o: Obj | undefined): DumpCpu | undefined {
  if (!o || !Array.isArray(o.functions)) return undefined;
  return {
    windowMs: num(o.windowMs), cpuMs: num(o.cpuMs),
    functions: list(o.functions, (f) => ({ name: str(f.name), file: str(f.file), line: num(f.line), selfMs: num(f.selfMs), totalMs: num(f.totalMs) })),
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

export async function readDump(path: string): Promise<LoadedDump>;
/** With `seen` (digests of the files read so far): undefined for a file identical to one of them. */
export async function readDump(path: string, seen: Set<string>): Promise<LoadedDump | undefined>;
export async function readDump(path: string, seen?: Set<string>): Promise<LoadedDump | undefined> {
  const st = await fs.stat(path);
  if (!st.isFile()) throw new Error('not a file');
  if (st.size > MAX_DUMP_BYTES) throw new Error(`${st.size} bytes: too big for a dump`);
  const bytes = await fs.readFile(path);
  if (seen) {
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (seen.has(digest)) return undefined;
    seen.add(digest);
  }
  return { name: basename(path), path, dump: parseDump(bytes.toString('utf8')) };
}

export interface DumpSet {
  dumps: LoadedDump[];
  /** One line per file that could not be read, for stderr: the others are still shown. */
  problems: string[];
}

/**
 * Every dump in `dirs` (oldest first), optionally only those of the supervisor named `name`. Several dirs (the
 * dump dirs of many hosts) merge into one list by incident time; a file whose bytes equal one already read (the
 * same dump gathered twice, say by two sync jobs) counts once. A dir that cannot be listed throws.
 */
export async function loadDumps(dirs: string | readonly string[], name?: string): Promise<DumpSet> {
  const out: DumpSet = { dumps: [], problems: [] };
  const all = typeof dirs === 'string' ? [dirs] : dirs;
  const files = [];
  for (const dir of all) files.push(...await listDumps(dir));
  // File names start with the incident time: sorting them merges the dirs in time order.
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.path < b.path ? -1 : 1));
  const seen = new Set<string>();
  for (const f of files) {
    try {
      const d = await readDump(f.path, seen);
      if (d && (name === undefined || d.dump.supervisor.name === name)) out.dumps.push(d);
    } catch (e) {
      // Deleted by rotation between the listing and the read: not a problem worth reporting.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.problems.push(`${all.length > 1 ? f.path : f.name}: ${(e as Error).message}`);
    }
  }
  return out;
}

/**
 * The file `superv dumps show TARGET` means: `latest` (the newest dump in `dir`, of `name` when given), a
 * path, or a file name inside `dir`. Throws an Error saying what was looked for.
 */
export async function resolveDumpTarget(target: string, dirs: string | readonly string[], name?: string): Promise<string> {
  const all = typeof dirs === 'string' ? [dirs] : dirs;
  if (target === 'latest') {
    const set = await loadDumps(all, name);
    const last = set.dumps[set.dumps.length - 1];
    if (!last) throw new Error(`no dumps${name ? ` of ${name}` : ''} in ${all.join(', ')}`);
    return last.path;
  }
  const candidates = isAbsolute(target) || target.includes('/') ? [resolve(target)] : [...all.map((d) => join(d, target)), resolve(target)];
  for (const c of candidates) {
    if (await fs.stat(c).then((s) => s.isFile(), () => false)) return c;
  }
  throw new Error(`no dump ${target} (looked in ${candidates.join(' and ')})`);
}
