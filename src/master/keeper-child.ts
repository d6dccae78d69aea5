// The port keeper's placeholder process (see listen-keeper.ts): a cluster worker that never receives a
// message, because the master answers for it. It only has to stay alive, and to end with the master.

// Signals sent to the whole process group (a terminal's Ctrl-C, `systemctl stop`) are the master's to
// handle: it releases the port and ends this process by closing its IPC channel.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(sig, () => undefined);
process.on('disconnect', () => process.exit(0));
setInterval(() => undefined, 2 ** 30);
