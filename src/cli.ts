#!/usr/bin/env node
// superv's command line: parse, then hand over. It prints user errors as `superv: …` with a non-zero
// exit and no stack trace; a stack means a bug in superv.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { helpText } from './config/help';
import { loadConfig } from './config/load';
import { SupervError } from './errors';
import { runMaster } from './master/master';
import { DAEMON_CHILD_ENV } from './protocol';
import { createLogger } from './master/logger';
import { reaperPlan, runUnderReaper } from './master/pid1';

function version(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

async function start(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(helpText(version())); return 0; }
  const warn = (msg: string) => process.stderr.write(`superv: warning: ${msg}\n`);
  const config = loadConfig(argv, process.env, process.cwd(), warn);
  if (!existsSync(config.app)) throw new SupervError('SUPERV_ERR_APP_NOT_FOUND', config.app);
  if (config.timeout > 0 && config.timeout < 2 * config.heartbeatInterval) {
    throw new SupervError('SUPERV_ERR_BAD_VALUE', 'timeout', `${config.timeout}ms must be at least twice heartbeat_interval (${config.heartbeatInterval}ms)`);
  }
  if (config.daemon && process.env[DAEMON_CHILD_ENV] !== '1') return (require('./commands/daemon') as typeof import('./commands/daemon')).daemonize(config, argv);
  // As PID 1, superv runs itself under a reaper of orphans (pid1.ts); this process only forwards signals.
  const reaper = reaperPlan();
  if (reaper) return runUnderReaper(reaper, __filename, argv);
  const log = createLogger({ name: config.name, level: config.logLevel, format: config.logFormat });
  return runMaster(config, log, () => loadConfig(argv, process.env, process.cwd()));
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start': return start(rest);
    case 'ls':
    case 'status':
    case 'reload':
    case 'scale':
    case 'stop':
    case 'dump':
      return (require('./commands/control') as typeof import('./commands/control')).runControlCommand(cmd, rest);
    // The subcommands load only when run: a master's RSS carries every module it ever loaded.
    case 'dumps': return (require('./commands/dumps') as typeof import('./commands/dumps')).runDumps(rest);
    case 'report': return (require('./commands/report') as typeof import('./commands/report')).runReport(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(helpText(version()));
      return cmd === undefined ? 2 : 0;
    case '--version':
    case '-v':
      process.stdout.write(version() + '\n');
      return 0;
    default:
      throw new SupervError('SUPERV_ERR_USAGE', `unknown command ${JSON.stringify(cmd)}; try superv --help`);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; if (code !== 0 || process.argv[2] === 'start') process.exit(code); },
  (err: unknown) => {
    if (err instanceof SupervError) {
      process.stderr.write(`superv: ${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`superv: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(70);
  },
);
