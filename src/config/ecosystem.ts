// pm2 users: `superv start ecosystem.config.js` reads the pm2 cluster-mode fields that map onto superv's
// settings, and warns about the rest instead of silently ignoring them. pm2's durations are milliseconds.

import { createRequire } from 'node:module';
import { basename, dirname, resolve } from 'node:path';
import { SupervError } from '../errors';
import type { Config } from './settings';

type Sourced = { value: string | number | boolean | string[] | null | undefined; where: string; baseDir: string };
export type EcosystemLayer = Partial<Record<keyof Config, Sourced>>;

export function isEcosystemFile(file: string): boolean {
  return /^ecosystem(\.[\w-]+)*\.(c?js|json)$/.test(basename(file)) || /\.config\.c?js$/.test(basename(file));
}

/** The pm2 fields superv maps, and those it knowingly ignores (with why). */
const IGNORED: Record<string, string> = {
  exec_mode: 'superv always runs cluster mode',
  watch: 'use `superv reload` from your deploy instead of file watching',
  ignore_watch: 'file watching is not supported',
  autorestart: 'superv always replaces dead workers',
  max_restarts: 'superv backs off exponentially instead (min_uptime, backoff_max)',
  restart_delay: 'superv backs off exponentially instead (backoff_max)',
  exp_backoff_restart_delay: 'superv always backs off exponentially (backoff_max)',
  merge_logs: 'worker output passes through unchanged',
  log_date_format: 'the master logs JSON lines with times',
  error_file: 'worker output passes through unchanged', out_file: 'worker output passes through unchanged',
  log_file: 'use --daemon --log-file', pid_file: 'use --pid-file',
};

function ms(n: unknown, field: string, file: string): string {
  if (typeof n !== 'number' || n < 0) throw new SupervError('SUPERV_ERR_BAD_VALUE', `${field} in ${file}`, `${JSON.stringify(n)}: expected milliseconds`);
  return `${n}ms`;
}

export function ecosystemLayer(file: string, wantName: string | undefined, warn: (msg: string) => void): EcosystemLayer {
  let mod: unknown;
  try {
    mod = createRequire(resolve(file))(resolve(file));
  } catch (err) {
    throw new SupervError('SUPERV_ERR_CONFIG_FILE', file, (err as Error).message.split('\n')[0]!);
  }
  const apps = (mod as { apps?: unknown }).apps ?? mod;
  const list = Array.isArray(apps) ? apps as Array<Record<string, unknown>> : [apps as Record<string, unknown>];
  const app = wantName ? list.find((a) => a.name === wantName) : list[0];
  if (!app || typeof app !== 'object') {
    throw new SupervError('SUPERV_ERR_CONFIG_FILE', file, wantName ? `no app named ${wantName}` : 'no apps');
  }
  if (!wantName && list.length > 1) warn(`${file} has ${list.length} apps; running the first, ${String(app.name)} (pick one with --name)`);
  const baseDir = typeof app.cwd === 'string' ? resolve(dirname(resolve(file)), app.cwd) : dirname(resolve(file));
  const layer: EcosystemLayer = {};
  const set = (key: keyof Config, value: Sourced['value'], field: string) => { layer[key] = { value, where: `${file} (${field})`, baseDir }; };
  for (const [field, v] of Object.entries(app)) {
    switch (field) {
      case 'name': set('name', v as string, field); break;
      case 'script': set('app', v as string, field); break;
      case 'cwd': break;
      case 'args': set('args', Array.isArray(v) ? v.map(String) : String(v).split(/\s+/).filter(Boolean), field); break;
      case 'instances': {
        const n = v === 'max' || v === 0 ? 'max' : typeof v === 'number' && v < 0 ? 'max' : v;
        if (typeof v === 'number' && v < 0) warn(`${field}: ${v} (CPUs minus ${-v}) is read as max`);
        set('workers', n as string | number, field);
        break;
      }
      case 'env':
        if (typeof v !== 'object' || v === null) throw new SupervError('SUPERV_ERR_BAD_VALUE', `env in ${file}`, 'expected an object');
        set('env', Object.entries(v).map(([k, x]) => `${k}=${String(x)}`), field);
        break;
      case 'node_args':
      case 'interpreter_args':
        set('nodeArgs', Array.isArray(v) ? v.map(String) : String(v).split(/\s+/).filter(Boolean), field);
        break;
      case 'max_memory_restart': set('maxMemory', v as string | number, field); break;
      case 'kill_timeout': set('gracefulTimeout', ms(v, field, file), field); break;
      case 'listen_timeout': set('listenTimeout', ms(v, field, file), field); break;
      case 'wait_ready': set('waitReady', v as boolean, field); break;
      case 'instance_var': set('instanceVar', v as string, field); break;
      default:
        warn(`pm2 field ${field} is ignored: ${IGNORED[field] ?? 'superv has no equivalent'}`);
    }
  }
  return layer;
}
