#!/usr/bin/env node
// superv's command line: parse, then hand over. It prints user errors as `superv: …` with a non-zero
// exit and no stack trace; a stack means a bug in superv.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS, PM2_COMMANDS, commandHelp, commandSummaries } from './commands/table';
import { helpText } from './config/help';
import { checkConfig, loadConfig } from './config/load';
import { SupervError } from './errors';
import { runMaster } from './master/master';
import { DAEMON_CHILD_ENV } from './protocol';
import { createLogger, type LogOptions } from './master/logger';
import { LogFile, logFileOf } from './master/log-file';
import { reaperPlan, runUnderReaper } from './master/pid1';

function version(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

async function start(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) { process.stdout.write(helpText(version(), commandSummaries())); return 0; }
  const warn = (msg: string) => process.stderr.write(`superv: warning: ${msg}\n`);
  const config = loadConfig(argv, process.env, process.cwd(), warn);
  checkConfig(config);
  if (config.daemon && process.env[DAEMON_CHILD_ENV] !== '1') return (require('./commands/daemon') as typeof import('./commands/daemon')).daemonize(config, argv);
  // As PID 1, superv runs itself under a reaper of orphans (pid1.ts); this process only forwards signals.
  const reaper = reaperPlan();
  if (reaper) return runUnderReaper(reaper, __filename, argv);
  const logOpts: LogOptions = { name: config.name, level: config.logLevel, format: config.logFormat };
  // A daemon owns its log file (rotation, SIGUSR1 reopen); its stdout and stderr, opened on the same file by
  // the parent, are left for what is not a record (a Node warning, a crash of superv itself).
  if (config.daemon) {
    logOpts.file = new LogFile(logFileOf(config), config.logMaxSize, config.logKeep,
      (problem) => log.error({ event: 'log-file-failed', err: problem }, problem));
  }
  const log = createLogger(logOpts);
  // A reload reads the settings again the same way, with the same checks as this start.
  const reread = () => { const next = loadConfig(argv, process.env, process.cwd(), warn); checkConfig(next); return next; };
  return runMaster(config, log, reread, logOpts);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(helpText(version(), commandSummaries()));
      return cmd === undefined ? 2 : 0;
    case '--version':
    case '-v':
      process.stdout.write(version() + '\n');
      return 0;
    default: break;
  }
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (command === undefined) {
    const pm2 = Object.hasOwn(PM2_COMMANDS, cmd) ? `; pm2's ${cmd}: ${PM2_COMMANDS[cmd]}` : '; try superv --help';
    throw new SupervError('SUPERV_ERR_USAGE', `unknown command ${JSON.stringify(cmd)}${pm2}`);
  }
  if (cmd === 'start') return start(rest);
  // `superv CMD --help` never reaches the command: it works even when the command's own arguments are wrong.
  if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(commandHelp(cmd, command)); return 0; }
  return command.run(rest);
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
