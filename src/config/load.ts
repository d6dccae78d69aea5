// Turns flags, env vars and a YAML file into one validated Config. Precedence: flag > env > file > default.
// Every message names the bad thing: the setting, the value and where it came from (flag, env var, or
// the YAML file and line).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Node as YamlNode } from 'yaml';
import { SupervError } from '../errors';
import { INTERNAL_ENV, MAX_DURATION_MS, MAX_WORKERS, PM2_FLAGS, SETTINGS, SETTING_KEYS, availableCpus, envOf, flagOf, yamlOf, type Config, type Setting } from './settings';
import { didYouMean, parseDuration, parseSize } from './units';
import { routePatternProblem } from '../util/route-pattern';
import { traceUrlProblem } from '../util/trace-url';
import { ecosystemLayer, isEcosystemFile } from './ecosystem';
import { entryName, resolveEntry } from './entry';

type Raw = string | number | boolean | string[] | Record<string, unknown> | null | undefined;
type Sourced = { value: Raw; where: string; baseDir: string };
type Layer = Partial<Record<keyof Config, Sourced>>;

const FLAG_TO_KEY = new Map<string, keyof Config>();
for (const key of SETTING_KEYS) {
  FLAG_TO_KEY.set(flagOf(key), key);
  const { short, pm2Flag } = SETTINGS[key];
  if (short) FLAG_TO_KEY.set(short, key);
  if (pm2Flag) FLAG_TO_KEY.set(pm2Flag, key);
}

/** Parses `superv start` arguments: `APP [--flag value | --flag=value]... [-- app args...]`. */
export function parseStartArgs(argv: readonly string[], cwd: string): Layer {
  const layer: Layer = {};
  const set = (key: keyof Config, value: Raw, where: string) => { layer[key] = { value, where, baseDir: cwd }; };
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') { set('args', argv.slice(i + 1), 'arguments after --'); break; }
    if (!tok.startsWith('-') || tok === '-') {
      if (layer.app) throw new SupervError('SUPERV_ERR_USAGE', `unexpected argument ${JSON.stringify(tok)} (app args go after --)`);
      set('app', tok, 'the command line');
      continue;
    }
    const eq = tok.indexOf('=');
    const flag = eq > 0 ? tok.slice(0, eq) : tok;
    let key = FLAG_TO_KEY.get(flag);
    let value: Raw = eq > 0 ? tok.slice(eq + 1) : undefined;
    if (!key && flag.startsWith('--no-')) {
      const k = FLAG_TO_KEY.get('--' + flag.slice(5));
      if (k && SETTINGS[k].kind.type === 'bool') { key = k; value = false; }
    }
    if (!key && Object.hasOwn(PM2_FLAGS, flag)) {
      const ours = flagOf(PM2_FLAGS[flag]!);
      throw new SupervError('SUPERV_ERR_UNKNOWN_SETTING', `flag ${flag}`, ` (pm2's ${flag} is superv's ${ours})`);
    }
    if (!key) {
      const hint = didYouMean(flag, [...FLAG_TO_KEY.keys()].filter((f) => f.startsWith('--')));
      throw new SupervError('SUPERV_ERR_UNKNOWN_SETTING', `flag ${flag}`, hint ? ` (did you mean ${hint}?)` : '');
    }
    if (value === undefined) {
      if (SETTINGS[key].kind.type === 'bool') value = true;
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new SupervError('SUPERV_ERR_BAD_VALUE', flag, 'it needs a value');
        value = next;
        i++;
      }
    }
    set(key, value, `flag ${flag}`);
  }
  return layer;
}

export function envLayer(env: NodeJS.ProcessEnv, cwd: string): Layer {
  const layer: Layer = {};
  const known = new Set(SETTING_KEYS.map(envOf));
  for (const key of SETTING_KEYS) {
    const name = envOf(key);
    const v = env[name];
    if (v !== undefined && v !== '' && !SETTINGS[key].notIn?.includes('env')) {
      layer[key] = { value: v, where: `env ${name}`, baseDir: cwd };
    }
  }
  for (const name of Object.keys(env)) {
    // SUPERV_DEBUG-style variables of other tools are not ours to reject; only near-misses of ours are.
    if (name.startsWith('SUPERV_') && !known.has(name) && !INTERNAL_ENV.has(name)) {
      const hint = didYouMean(name, [...known]);
      if (hint) throw new SupervError('SUPERV_ERR_UNKNOWN_SETTING', `env ${name}`, ` (did you mean ${hint}?)`);
    }
  }
  return layer;
}

export function yamlLayer(file: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SupervError('SUPERV_ERR_CONFIG_FILE', file, (err as Error).message);
  }
  // Loaded here, not at the top: most masters run without a YAML file, and each module loaded stays in
  // the master's RSS for its whole life (the benchmark's master-RSS figure).
  const { LineCounter, isMap, isScalar, parseDocument } = require('yaml') as typeof import('yaml');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new SupervError('SUPERV_ERR_CONFIG_FILE', file, doc.errors[0]!.message.split('\n')[0]!);
  }
  const layer: Layer = {};
  if (doc.contents === null) return layer;
  const lineOf = (node: YamlNode | null | undefined) => node?.range ? lines.linePos(node.range[0]).line : 0;
  if (!isMap(doc.contents)) {
    throw new SupervError('SUPERV_ERR_CONFIG_FILE', file, `line ${lineOf(doc.contents)}: expected a map of settings`);
  }
  const byYaml = new Map(SETTING_KEYS.filter((k) => !SETTINGS[k].notIn?.includes('yaml')).map((k) => [yamlOf(k), k]));
  const baseDir = dirname(resolve(file));
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as YamlNode;
    const name = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const where = `${file}:${lineOf(keyNode)} (${name})`;
    const key = byYaml.get(name);
    if (!key) {
      const hint = didYouMean(name, [...byYaml.keys()]);
      throw new SupervError('SUPERV_ERR_UNKNOWN_SETTING', `${name} in ${file}:${lineOf(keyNode)}`, hint ? ` (did you mean ${hint}?)` : '');
    }
    const value = (pair.value as YamlNode | null)?.toJSON() as Raw;
    layer[key] = { value, where, baseDir };
  }
  return layer;
}

function bad(key: keyof Config, src: Sourced, why: string): SupervError {
  return new SupervError('SUPERV_ERR_BAD_VALUE', `${yamlOf(key)} from ${src.where}`, `${JSON.stringify(src.value)}: ${why}`);
}

/** Converts one raw value to its typed form, or throws naming the setting, the value and its source. */
function coerce(key: keyof Config, s: Setting, src: Sourced): string | number | boolean | string[] {
  const v = src.value;
  const k = s.kind;
  switch (k.type) {
    case 'string':
    case 'path': {
      if (typeof v !== 'string' && typeof v !== 'number') throw bad(key, src, 'expected a string');
      const str = String(v);
      if (str === '') throw bad(key, src, 'must not be empty');
      return k.type === 'path' ? resolve(src.baseDir, str) : str;
    }
    case 'int': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(n)) throw bad(key, src, 'expected a whole number');
      if (n < k.min || (k.max !== undefined && n > k.max)) {
        throw bad(key, src, `must be ${k.max !== undefined ? `between ${k.min} and ${k.max}` : `at least ${k.min}`}`);
      }
      return n;
    }
    case 'workers': {
      if (v === 'max') return availableCpus();
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw bad(key, src, `expected a number from 1 to ${MAX_WORKERS}, or max`);
      return n;
    }
    case 'duration': {
      const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined;
      if (ms === undefined) throw bad(key, src, 'expected a duration such as 30, 30s, 500ms or 2m');
      if (k.min !== undefined && ms < k.min && !(ms === 0 && k.zeroIsOff)) {
        throw bad(key, src, `must be at least ${k.min}ms`);
      }
      const max = k.max ?? MAX_DURATION_MS;
      if (ms > max) throw bad(key, src, `must be at most ${max}ms (about ${(max / 86_400_000).toFixed(1)} days: Node's timers cannot wait longer)`);
      return ms;
    }
    case 'size': {
      const b = typeof v === 'string' || typeof v === 'number' ? parseSize(v) : undefined;
      if (b === undefined) throw bad(key, src, 'expected a size such as 512M, 1G or 800K');
      if (k.min !== undefined && b < k.min && !(b === 0 && k.zeroIsOff)) {
        throw bad(key, src, `must be at least ${k.min / 2 ** 20}M${k.zeroIsOff ? ' (or 0 = off)' : ''}`);
      }
      return b;
    }
    case 'bool': {
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string' && /^(true|1|yes|on)$/i.test(v)) return true;
      if (typeof v === 'string' && /^(false|0|no|off)$/i.test(v)) return false;
      throw bad(key, src, 'expected true or false');
    }
    case 'routes': {
      const list = coerce(key, { ...s, kind: { type: 'list' } }, src) as string[];
      for (const p of list) {
        const why = routePatternProblem(p);
        if (why !== undefined) throw bad(key, src, `${JSON.stringify(p)}: ${why}`);
      }
      return list;
    }
    case 'list': {
      if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.map(String);
      if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
      // A YAML map (as `env:` is usually written) becomes KEY=VALUE pairs.
      if (v !== null && typeof v === 'object' && !Array.isArray(v) &&
        Object.values(v).every((x) => ['string', 'number', 'boolean'].includes(typeof x))) {
        return Object.entries(v).map(([k2, x]) => `${k2}=${String(x)}`);
      }
      throw bad(key, src, 'expected a list of strings');
    }
    case 'enum': {
      if (typeof v === 'string' && k.choices.includes(v)) return v;
      throw bad(key, src, `expected one of ${k.choices.join(', ')}`);
    }
  }
}

/** Merges the layers (earlier wins) over the defaults and validates the whole. */
export function resolveLayers(layers: readonly Layer[], cwd: string): Config {
  const out: Partial<Record<keyof Config, unknown>> = {};
  let appGiven: { given: string; baseDir: string } | undefined;
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    const src = layers.map((l) => l[key]).find((x) => x !== undefined && x.value !== null && x.value !== undefined)
      ?? { value: s.default as Raw, where: 'the default', baseDir: cwd };
    if ((s.kind.type === 'path' || s.kind.type === 'string') && src.value === '') { out[key] = ''; continue; }
    out[key] = coerce(key, s, src);
    if (key === 'app') appGiven = { given: String(src.value), baseDir: src.baseDir };
  }
  const config = out as Config;
  if (config.app === '' || appGiven === undefined) throw new SupervError('SUPERV_ERR_USAGE', 'superv start APP [options] [-- app args]: no app given');
  config.app = resolveEntry(appGiven.given, appGiven.baseDir);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(config.instanceVar)) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'instance_var', `${JSON.stringify(config.instanceVar)}: expected an environment variable name`);
  }
  for (const pair of config.env) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(pair)) throw new SupervError('SUPERV_ERR_BAD_VALUE', 'env', `${JSON.stringify(pair)}: expected KEY=VALUE`);
  }
  const traceUrlWhy = config.traceUrl === '' ? undefined : traceUrlProblem(config.traceUrl);
  if (traceUrlWhy !== undefined) throw new SupervError('SUPERV_ERR_BAD_VALUE', 'trace_url', `${JSON.stringify(config.traceUrl)}: ${traceUrlWhy}`);
  if (config.name === '') config.name = entryName(appGiven.given, config.app);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(config.name)) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'name', `${JSON.stringify(config.name)}: use letters, digits, . _ - (at most 64)`);
  }
  return config;
}

/** The whole of it: CLI layer, env layer, YAML layer named by either, defaults. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string, warn: (msg: string) => void = () => undefined): Config {
  const cli = parseStartArgs(argv, cwd);
  const fromEnv = envLayer(env, cwd);
  const file = cli.config ?? fromEnv.config;
  const layers: Layer[] = [cli, fromEnv];
  // `superv start ecosystem.config.js`: the pm2 file stands where a YAML file would.
  const appArg = cli.app?.value;
  if (typeof appArg === 'string' && isEcosystemFile(appArg)) {
    delete cli.app;
    const name = cli.name?.value ?? fromEnv.name?.value;
    layers.push(ecosystemLayer(resolve(cwd, appArg), typeof name === 'string' ? name : undefined, warn));
  }
  if (file && typeof file.value === 'string') layers.push(yamlLayer(resolve(file.baseDir, file.value)));
  return resolveLayers(layers, cwd);
}

/**
 * The checks that span settings, run wherever a config is taken: `start`, and `reload` before any worker is
 * replaced (a reload that would not start must not begin).
 */
export function checkConfig(config: Config): void {
  if (!existsSync(config.app)) throw new SupervError('SUPERV_ERR_APP_NOT_FOUND', config.app);
  if (config.timeout > 0 && config.timeout < 2 * config.heartbeatInterval) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'timeout', `${config.timeout}ms must be at least twice heartbeat_interval (${config.heartbeatInterval}ms)`);
  }
}

/** The settings that differ between `prev` and `next` but are read only at start (`startOnly`). */
export function startOnlyChanges(prev: Config, next: Config): Array<keyof Config> {
  return SETTING_KEYS.filter((k) => SETTINGS[k].startOnly && JSON.stringify(prev[k]) !== JSON.stringify(next[k]));
}

/** `next`, with the start-only settings kept at their running values. */
export function withStartOnlyFrom(prev: Config, next: Config): Config {
  const out: Record<string, unknown> = { ...next };
  for (const k of SETTING_KEYS) if (SETTINGS[k].startOnly) out[k] = prev[k];
  return out as unknown as Config;
}
