// x86_64 syscall numbers → names, for the `/proc/PID/syscall` line of a stuck worker. Only the calls a
// blocked Node process is plausibly sitting in: the number alone means little to whoever reads a dump.
// Numbers differ per architecture (arm64 has no `open`, `epoll_wait`, …), so other arches get no names
// rather than wrong ones. Checked against /usr/include/x86_64-linux-gnu/asm/unistd_64.h.

const X86_64: Readonly<Record<number, string>> = {
  0: 'read', 1: 'write', 2: 'open', 3: 'close', 4: 'stat', 5: 'fstat', 6: 'lstat', 7: 'poll',
  8: 'lseek', 9: 'mmap', 11: 'munmap', 16: 'ioctl', 17: 'pread64', 18: 'pwrite64', 19: 'readv',
  20: 'writev', 23: 'select', 24: 'sched_yield', 26: 'msync', 28: 'madvise', 34: 'pause',
  35: 'nanosleep', 40: 'sendfile', 42: 'connect', 43: 'accept', 44: 'sendto', 45: 'recvfrom',
  46: 'sendmsg', 47: 'recvmsg', 56: 'clone', 59: 'execve', 61: 'wait4', 62: 'kill', 65: 'semop',
  70: 'msgrcv', 72: 'fcntl', 73: 'flock', 74: 'fsync', 75: 'fdatasync', 128: 'rt_sigtimedwait',
  130: 'rt_sigsuspend', 162: 'sync', 202: 'futex', 208: 'io_getevents', 217: 'getdents64',
  230: 'clock_nanosleep', 231: 'exit_group', 232: 'epoll_wait', 233: 'epoll_ctl', 234: 'tgkill',
  243: 'mq_timedreceive', 247: 'waitid', 257: 'openat', 262: 'newfstatat', 263: 'unlinkat',
  270: 'pselect6', 271: 'ppoll', 275: 'splice', 281: 'epoll_pwait', 285: 'fallocate', 288: 'accept4',
  295: 'preadv', 296: 'pwritev', 299: 'recvmmsg', 306: 'syncfs', 307: 'sendmmsg', 316: 'renameat2',
  326: 'copy_file_range', 327: 'preadv2', 328: 'pwritev2', 332: 'statx', 426: 'io_uring_enter',
  435: 'clone3', 441: 'epoll_pwait2',
};

/** The name of syscall `nr` on `arch` (a `process.arch` value), or undefined when superv does not know it. */
export function syscallName(nr: number, arch: string = process.arch): string | undefined {
  if (arch !== 'x64') return undefined;
  return Object.prototype.hasOwnProperty.call(X86_64, nr) ? X86_64[nr] : undefined;
}
