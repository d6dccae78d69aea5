// `superv --help` and the README's settings table, both generated from SETTINGS.

import { SETTINGS, SETTING_KEYS, envOf, flagOf, yamlOf, type Config, type Setting } from './settings';
import { formatDuration } from './units';

function kindLabel(s: Setting): string {
  const k = s.kind;
  switch (k.type) {
    case 'int': return 'N';
    case 'workers': return 'N|max';
    case 'duration': return 'DURATION';
    case 'size': return 'SIZE';
    case 'bool': return '';
    case 'list': return 'LIST';
    case 'routes': return 'PATTERNS';
    case 'enum': return k.choices.join('|');
    case 'path': return 'PATH';
    case 'string': return 'STRING';
  }
}

export function defaultLabel(key: keyof Config): string {
  const s = SETTINGS[key];
  if (s.computed) return s.computed;
  const d = s.default;
  if (Array.isArray(d)) return d.length ? d.join(' ') : '(none)';
  if (d === '') return '(none)';
  if (s.kind.type === 'duration' && typeof d === 'number') return formatDuration(d);
  return String(d);
}

/** `superv --help`: the command lines come from the command table (src/commands/table.ts), the options from SETTINGS. */
export function helpText(version: string, commands: readonly string[]): string {
  const lines = [
    `superv ${version} — a process supervisor for Node.js HTTP services that dumps evidence from inside a stuck worker before it kills it`,
    '',
    'Usage:',
    ...commands,
    '  superv CMD --help',
      '      one command\'s usage and options',
    '  superv --help | --version',
    '',
    'Options (each also an env var SUPERV_… and a key in --config YAML; flag > env > file > default):',
  ];
  for (const key of SETTING_KEYS) {
    if (key === 'app' || key === 'args') continue;
    const s = SETTINGS[key];
    const flag = `${s.short ? s.short + ', ' : ''}${s.pm2Flag ? s.pm2Flag + ', ' : ''}${flagOf(key)} ${kindLabel(s)}`.trimEnd();
    lines.push(`  ${flag.padEnd(34)} ${s.doc} [default: ${defaultLabel(key)}]`);
  }
  lines.push('', 'Durations: 30, 30s, 500ms, 2m. Sizes: 512M, 1G. Signals to the master: TERM/INT graceful stop, QUIT quick stop,',
    'HUP rolling reload, TTIN/TTOU one worker more/fewer, USR2 dump every worker. SIGUSR2 to a worker dumps that worker.');
  return lines.join('\n') + '\n';
}

function md(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The README's settings table. */
export function settingsMarkdown(): string {
  const rows = ['| setting (YAML) | flag | env | type | default | what it does |', '|---|---|---|---|---|---|'];
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    const yaml = s.notIn?.includes('yaml') ? '—' : `\`${yamlOf(key)}\``;
    const flag = key === 'app' ? '`APP` (argument)' : key === 'args' ? '`-- ARGS`' : `\`${flagOf(key)}\`${s.short ? ` \`${s.short}\`` : ''}${s.pm2Flag ? ` \`${s.pm2Flag}\`` : ''}`;
    const env = s.notIn?.includes('env') ? '—' : `\`${envOf(key)}\``;
    rows.push(`| ${yaml} | ${flag} | ${env} | ${md(kindLabel(s) || 'bool')} | ${md(defaultLabel(key))} | ${md(s.doc)} |`);
  }
  return rows.join('\n') + '\n';
}

/** config/superv.yaml: every setting with its default and doc, as a starting point. */
export function exampleYaml(): string {
  const lines = ['# superv.yaml: every setting, with its default. Generated from src/config/settings.ts (npm run docs).',
    '# Use: superv start --config superv.yaml   (flags and SUPERV_* env vars override this file)', ''];
  let section = '';
  for (const key of SETTING_KEYS) {
    const s = SETTINGS[key];
    if (s.notIn?.includes('yaml')) continue;
    if (s.section !== section) { section = s.section; lines.push(`# ── ${section} ${'─'.repeat(60 - section.length)}`); }
    lines.push(`# ${s.doc}`);
    const d = s.default;
    let value: string;
    if (key === 'app') value = 'app.js';
    else if (Array.isArray(d)) value = '[]';
    else if (s.computed || d === '') value = `# (${s.computed ?? 'none'})`;
    else if (s.kind.type === 'size' && d === 0) value = '0';
    else value = typeof d === 'string' ? JSON.stringify(d).replace(/^"(.*)"$/, (_, x: string) => (/^[\w./-]+$/.test(x) ? x : `"${x}"`)) : String(d);
    lines.push(value.startsWith('#') ? `# ${yamlOf(key)}: ${value.slice(2)}` : `${yamlOf(key)}: ${value}`);
    lines.push('');
  }
  return lines.join('\n');
}
