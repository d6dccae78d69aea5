// The control socket's protocol: one JSON request per line, one JSON reply per line. Small and strict:
// unknown commands, malformed or oversized lines get an error reply, never a crash.

export const MAX_REQUEST_BYTES = 64 * 1024;

export type ControlRequest =
  | { cmd: 'status' }
  | { cmd: 'reload' }
  | { cmd: 'scale'; to: string }
  | { cmd: 'stop'; mode?: 'graceful' | 'quick' }
  | { cmd: 'dump'; worker?: number }
  /** The master's per-route CPU totals (master/cpu-stats.ts), for a live `superv report`. */
  | { cmd: 'cpu' }
  /** `superv profile`: the watchdog of each worker (or of `worker`) writes a CPU profile to `file` (-w<id> added for several). */
  | { cmd: 'profile'; worker?: number; durationMs: number; file: string }
  /** `superv heap-snapshot`: the watchdog of `worker` writes a heap snapshot to `file`. */
  | { cmd: 'heap-snapshot'; worker: number; file: string };

export type ControlReply = { ok: true; result: unknown } | { ok: false; error: string };

const COMMANDS = ['status', 'reload', 'scale', 'stop', 'dump', 'cpu', 'profile', 'heap-snapshot'] as const;
/** The longest profile `superv profile` may ask for. */
export const MAX_PROFILE_MS = 10 * 60_000;

/** Validates an untrusted request; returns an error string for anything not exactly right. */
export function parseRequest(line: string): ControlRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'the request is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the request must be a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o.cmd !== 'string' || !(COMMANDS as readonly string[]).includes(o.cmd)) {
    return `unknown command ${JSON.stringify(o.cmd)}; known: ${COMMANDS.join(', ')}`;
  }
  switch (o.cmd) {
    case 'scale':
      if (typeof o.to !== 'string' || !/^[+-]?\d{1,4}$/.test(o.to)) return 'scale needs `to`: N, +N or -N';
      return { cmd: 'scale', to: o.to };
    case 'stop':
      if (o.mode !== undefined && o.mode !== 'graceful' && o.mode !== 'quick') return 'stop `mode` is graceful or quick';
      return { cmd: 'stop', mode: o.mode as 'graceful' | 'quick' | undefined };
    case 'dump':
      if (o.worker !== undefined && (typeof o.worker !== 'number' || !Number.isInteger(o.worker) || o.worker < 1)) return 'dump `worker` is a worker id';
      return { cmd: 'dump', worker: o.worker as number | undefined };
    case 'profile':
      if (o.worker !== undefined && (typeof o.worker !== 'number' || !Number.isInteger(o.worker) || o.worker < 1)) return 'profile `worker` is a worker id';
      if (typeof o.durationMs !== 'number' || !(o.durationMs >= 10 && o.durationMs <= MAX_PROFILE_MS)) return `profile \`durationMs\` is 10 to ${MAX_PROFILE_MS}`;
      if (typeof o.file !== 'string' || !o.file.startsWith('/')) return 'profile `file` is an absolute path';
      return { cmd: 'profile', worker: o.worker as number | undefined, durationMs: o.durationMs, file: o.file };
    case 'heap-snapshot':
      if (typeof o.worker !== 'number' || !Number.isInteger(o.worker) || o.worker < 1) return 'heap-snapshot `worker` is a worker id';
      if (typeof o.file !== 'string' || !o.file.startsWith('/')) return 'heap-snapshot `file` is an absolute path';
      return { cmd: 'heap-snapshot', worker: o.worker, file: o.file };
    default:
      return { cmd: o.cmd as 'status' | 'reload' | 'cpu' };
  }
}
