// `superv startup systemd [NAME] [--user] [--install]`, like `pm2 startup`: a systemd unit for how a supervisor
// runs now (read from the running master: absolute node and superv paths, its arguments, its directory), or for
// `-- start APP …` given after the options. It prints the unit; --install writes it, has systemd-analyze check
// it where there is one, and enables it with systemctl (it does not start it: the supervisor of that name is
// probably still running from your shell).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { checkConfig, loadConfig } from '../config/load';
import { request } from '../control/client';
import { defaultRunDir } from '../control/paths';
import { SupervError } from '../errors';
import type { MasterStatus } from '../master/status';
import { pickName } from './control';
import { envFileOf, renderUnit, unitName, type UnitInput } from './systemd-unit';

const USAGE = 'superv startup systemd [NAME] [--user] [--install] [--unit-dir DIR] [-- start APP [options]]';

interface StartupArgs { name: string | undefined; user: boolean; install: boolean; unitDir: string | undefined; start: string[] | undefined; runDir: string }

function parse(argv: string[]): StartupArgs {
  const [init, ...rest] = argv;
  if (init !== 'systemd') throw new SupervError('SUPERV_ERR_USAGE', `${USAGE}: ${init === undefined ? 'name the init system' : `${JSON.stringify(init)} is not supported (only systemd; Kubernetes: see README "Running at boot")`}`);
  const out: StartupArgs = { name: undefined, user: false, install: false, unitDir: undefined, start: undefined, runDir: resolve(defaultRunDir()) };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--') { out.start = rest.slice(i + 1); break; }
    if (a === '--user') out.user = true;
    else if (a === '--install') out.install = true;
    else if (a === '--unit-dir' || a === '--run-dir') {
      const v = rest[++i];
      if (!v) throw new SupervError('SUPERV_ERR_BAD_VALUE', a, 'it needs a value');
      if (a === '--unit-dir') out.unitDir = resolve(v); else out.runDir = resolve(v);
    } else if (a.startsWith('-')) throw new SupervError('SUPERV_ERR_USAGE', `unknown option ${a}`);
    else if (out.name === undefined) out.name = a;
    else throw new SupervError('SUPERV_ERR_USAGE', `${USAGE}: unexpected ${JSON.stringify(a)}`);
  }
  if (out.start && out.start[0] !== 'start') throw new SupervError('SUPERV_ERR_USAGE', `${USAGE}: after -- comes the start command line, e.g. -- start app.js -w 4`);
  return out;
}

function version(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

function serviceUser(user: boolean): string | undefined {
  const u = userInfo().username;
  return user || u === 'root' ? undefined : u;
}

/** From the running master, or from the start command line given after --. */
async function unitInput(a: StartupArgs): Promise<UnitInput> {
  const common = { user: a.user, username: serviceUser(a.user), version: version() };
  if (a.start) {
    // The settings are checked now, as start would check them: a unit that cannot start is not written.
    const config = loadConfig(a.start.slice(1), process.env, process.cwd(), () => undefined);
    checkConfig(config);
    return { ...common, name: config.name, node: process.execPath, cli: resolve(process.argv[1]!), argv: a.start, cwd: process.cwd(),
      runDir: config.runDir || a.runDir, gracefulTimeoutMs: config.gracefulTimeout };
  }
  const name = await pickName(a, a.name);
  const s = await request(a.runDir, name, { cmd: 'status' }) as MasterStatus;
  if (!s.start) throw new SupervError('SUPERV_ERR_CONTROL', `${name}'s master is older than superv startup: restart it, or pass -- start APP …`);
  return { ...common, name, ...s.start };
}

function unitDirOf(a: StartupArgs): string {
  if (a.unitDir) return a.unitDir;
  return a.user ? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'systemd', 'user') : '/etc/systemd/system';
}

/** systemd-analyze's word on the unit, where it is installed; undefined = accepted or not available. */
export function verifyUnit(file: string, user: boolean): string | undefined {
  const r = spawnSync('systemd-analyze', [...(user ? ['--user'] : []), 'verify', file], { encoding: 'utf8' });
  if (r.error) return undefined; // not installed: nothing to ask
  // --user needs a user manager's runtime dir; without one (a container, cron) it cannot check anything.
  if (r.status !== 0 && /Failed to (initialize manager|lookup RuntimeDirectory)/.test(r.stderr)) return undefined;
  return r.status === 0 ? undefined : (r.stderr || r.stdout).trim();
}

function systemctl(user: boolean, ...args: string[]): string | undefined {
  const r = spawnSync('systemctl', [...(user ? ['--user'] : []), ...args], { encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? undefined : (r.stderr || r.stdout).trim();
}

export async function runStartup(argv: string[]): Promise<number> {
  const a = parse(argv);
  const input = await unitInput(a);
  const unit = renderUnit(input);
  const name = unitName(input.name);
  if (!a.install) {
    process.stdout.write(unit);
    process.stderr.write(`# superv: to install it: superv startup systemd ${input.name}${a.user ? ' --user' : ''} --install\n`);
    return 0;
  }
  // Checked before it is written: a unit systemd would reject never lands in its directory.
  const scratch = mkdtempSync(join(tmpdir(), 'superv-unit-'));
  let rejected: string | undefined;
  try {
    writeFileSync(join(scratch, name), unit, { mode: 0o600 });
    rejected = verifyUnit(join(scratch, name), a.user);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (rejected !== undefined) {
    process.stderr.write(`superv: systemd-analyze verify rejects the unit ${name}; nothing written:\n${rejected}\n`);
    return 1;
  }
  const dir = unitDirOf(a);
  const file = join(dir, name);
  mkdirSync(dir, { recursive: true });
  // A unit holds no secret (they go in the environment file) and systemd reads it as any user: 0644.
  writeFileSync(file, unit, { mode: 0o644 });
  if (a.unitDir) {
    process.stdout.write(`wrote ${file}\nnot enabled (--unit-dir): systemctl${a.user ? ' --user' : ''} enable ${file}\n`);
    return 0;
  }
  const env = envFileOf(input.name, a.user).replace('%h', homedir());
  if (!existsSync(env)) {
    mkdirSync(dirname(env), { recursive: true, mode: 0o700 });
    writeFileSync(env, `# Environment of ${name}: KEY=VALUE, one a line (PORT, NODE_ENV, secrets). Read at each start.\n`, { mode: 0o600 });
  }
  process.stdout.write(`wrote ${file} (environment file ${env})\n`);
  const failed = systemctl(a.user, 'daemon-reload') ?? systemctl(a.user, 'enable', name);
  if (failed !== undefined) {
    process.stderr.write(`superv: systemctl could not enable ${name}: ${failed}\n`);
    return 1;
  }
  process.stdout.write(`enabled ${name}: it starts at boot. To move the running supervisor under systemd now:\n` +
    `  superv stop ${input.name} && systemctl${a.user ? ' --user' : ''} start ${name}\n`);
  return 0;
}
