// superv as PID 1 (a container's entrypoint, with no --init). The kernel hands PID 1 every orphaned
// process, and only waitpid(-1) reaps them; Node 20 can call neither that nor execve, so a JS PID 1 would
// collect the zombies of every grandchild the app leaves behind (a shell's background job, a crashed
// helper's children) until the PID table is full.
//
// So PID 1 stays a thin superv that forwards signals, and the real one runs under a reaper: a few lines
// of perl (perl-base is an essential package of Debian and Ubuntu, so the official node images have it)
// that mark themselves child subreaper (prctl PR_SET_CHILD_SUBREAPER) — the kernel then hands orphans of
// the app's processes to the reaper instead of PID 1 — start superv as their child, reap every child
// that exits, and pass signals on. Without perl, or on an architecture whose prctl number we do not know,
// superv runs as PID 1 itself and warns (see master.ts).

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as os } from 'node:os';
import { delimiter, join } from 'node:path';

/** Set on the superv that runs under the reaper: it must not start another one. */
export const REAPED_ENV = 'SUPERV_REAPED';

/** prctl(2)'s syscall number per architecture (Linux), and PR_SET_CHILD_SUBREAPER. */
const PRCTL_SYSCALL: Partial<Record<NodeJS.Architecture, number>> = { x64: 157, arm64: 167, ia32: 172, arm: 172 };
const PR_SET_CHILD_SUBREAPER = 36;

/** What PID 1 passes on: the stop, reload, scale and dump signals superv understands. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTTIN', 'SIGTTOU'];

// ARGV: prctl syscall number, then the command. Signals are passed to the child; the child's exit status
// becomes ours (128 + signal when it was killed). waitpid(-1) also collects every adopted orphan.
// The reaper and superv leave PID 1's process group: a terminal's Ctrl-C then reaches them only through
// PID 1's forwarding, once — a second SIGINT would be superv's quick stop. If prctl is refused (a seccomp
// profile), superv still starts, and says that orphans will not be reaped.
const REAPER = `
my $nr = shift @ARGV;
setpgrp(0, 0);
syscall($nr, ${PR_SET_CHILD_SUBREAPER}, 1, 0, 0, 0) == 0 or warn "superv: prctl(PR_SET_CHILD_SUBREAPER) failed: $!; orphans of the app will not be reaped\\n";
my $child = fork();
die "superv reaper: fork: $!\\n" unless defined $child;
if ($child == 0) { exec { $ARGV[0] } @ARGV or die "superv reaper: exec $ARGV[0]: $!\\n"; }
for my $sig (qw(${FORWARDED.map((s) => s.slice(3)).join(' ')})) { $SIG{$sig} = sub { kill $sig, $child; }; }
while (1) {
  my $pid = waitpid(-1, 0);
  if ($pid == $child) { exit(($? & 127) ? 128 + ($? & 127) : ($? >> 8)); }
  if ($pid == -1 && !$!{EINTR}) { exit 70; }
}
`;

function findPerl(): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const file = join(dir, 'perl');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch { /* next */ }
  }
  return undefined;
}

/** How to start the reaper, when this process should: it is PID 1, not already under one, and able to. */
export function reaperPlan(): { perl: string; syscall: number } | undefined {
  if (process.pid !== 1 || process.env[REAPED_ENV] === '1') return undefined;
  const syscall = PRCTL_SYSCALL[process.arch];
  const perl = findPerl();
  return syscall !== undefined && perl !== undefined ? { perl, syscall } : undefined;
}

/**
 * Runs this same command line (`superv start …`) under the reaper and resolves with its exit status.
 * Until then this process only forwards signals; it writes nothing itself.
 */
export function runUnderReaper(plan: { perl: string; syscall: number }, cli: string, argv: string[]): Promise<number> {
  const child = spawn(plan.perl, ['-e', REAPER, String(plan.syscall), process.execPath, ...process.execArgv, cli, 'start', ...argv], {
    stdio: 'inherit',
    env: { ...process.env, [REAPED_ENV]: '1' },
  });
  for (const sig of FORWARDED) process.on(sig, () => { try { child.kill(sig); } catch { /* already gone */ } });
  return new Promise((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`superv: could not start the PID 1 reaper (${plan.perl}): ${err.message}\n`);
      resolve(70);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? os.signals[signal] ?? 0 : 0)));
  });
}

