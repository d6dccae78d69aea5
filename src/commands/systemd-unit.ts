// The systemd unit `superv startup systemd` writes, from how a supervisor was started. Pure: reading the running
// master and installing are startup.ts. Each directive says why it is there, in the unit itself, because the
// unit is what an operator reads later, not this file.

export interface UnitInput {
  name: string;
  /** Absolute paths: systemd runs neither a shell nor a PATH lookup we could rely on. */
  node: string;
  cli: string;
  /** The arguments after `superv` (`start app.js …`), without --daemon. */
  argv: string[];
  cwd: string;
  runDir: string;
  gracefulTimeoutMs: number;
  user: boolean;
  /** The service user of a system unit (omitted when root). */
  username: string | undefined;
  version: string;
}

/** systemd's unit name for a supervisor. */
export function unitName(name: string): string {
  return `superv-${name.replace(/[^A-Za-z0-9:_.\\-]/g, '_')}.service`;
}

/** Where a unit's optional environment file is: the place for PORT, NODE_ENV and secrets, 0600, out of the unit. */
export function envFileOf(name: string, user: boolean): string {
  return user ? `%h/.config/superv/${name}.env` : `/etc/superv/${name}.env`;
}

/** `--daemon` is dropped: systemd wants the master in front, and it is systemd that restarts it. */
export function foregroundArgs(argv: readonly string[]): string[] {
  return argv.filter((a) => a !== '--daemon' && !a.startsWith('--daemon='));
}

/**
 * One argument of ExecStart: systemd splits on white space, reads C-style escapes inside double quotes, and
 * expands `%` specifiers and `$` variables, so `%` and `$` are doubled and anything unusual is quoted.
 */
export function quoteArg(arg: string): string {
  const escaped = arg.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@+=:,./%$-]+$/.test(escaped)) return escaped;
  return '"' + escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

export function renderUnit(u: UnitInput): string {
  // Longer than graceful_timeout, so that in-flight requests finish before systemd's SIGKILL.
  const stopSec = Math.ceil(u.gracefulTimeoutMs / 1000) + 10;
  const exec = [u.node, u.cli, ...foregroundArgs(u.argv)].map(quoteArg).join(' ');
  return [
    `# Written by \`superv startup systemd${u.user ? ' --user' : ''}\` (superv ${u.version}) for the supervisor ${u.name}.`,
    '[Unit]',
    `Description=${u.name} under superv`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    // superv stays in front; --daemon would make systemd lose its main process.
    'Type=simple',
    ...(u.username && !u.user ? [`User=${u.username}`] : []),
    // Taken verbatim but for specifiers: no quotes here.
    `WorkingDirectory=${u.cwd.replace(/%/g, '%%')}`,
    '# PORT, NODE_ENV, secrets: one KEY=VALUE a line, 0600. The leading - makes it optional.',
    `EnvironmentFile=-${envFileOf(u.name, u.user)}`,
    '# The same run dir as from your shell, so that `superv status`, `logs` and `top` find this master.',
    `Environment=${quoteArg(`SUPERV_RUN_DIR=${u.runDir}`)}`,
    `ExecStart=${exec}`,
    '# HUP is superv\'s rolling reload: `systemctl reload` loses no request.',
    'ExecReload=/bin/kill -HUP $MAINPID',
    '# TERM drains the workers gracefully; only the master gets it, and it ends its workers itself.',
    'KillSignal=SIGTERM',
    'KillMode=mixed',
    `# graceful_timeout (${Math.round(u.gracefulTimeoutMs / 1000)} s) + 10 s before systemd's SIGKILL.`,
    `TimeoutStopSec=${stopSec}`,
    // A crash loop at boot (SUPERV_ERR_BOOT_FAILED, exit 1) is retried, paced by RestartSec.
    'Restart=on-failure',
    'RestartSec=2',
    '',
    '[Install]',
    `WantedBy=${u.user ? 'default.target' : 'multi-user.target'}`,
    '',
  ].join('\n');
}
