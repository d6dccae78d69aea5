// `superv top` on a real pseudo-terminal (test/fixtures/pty-run.py: Python's pty module, a real resize with
// TIOCSWINSZ) against a real supervisor: what it draws fits the terminal, a resize redraws, q and Ctrl-C quit
// and give the terminal back in the mode it was; without a terminal it refuses, and --once prints a snapshot.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { dumpLine, renderTop, requestRates } from '../src/commands/top-view';
import type { MasterStatus } from '../src/master/status';
import { CLI, FIXTURES, cli, get, killAll, sleep, startSuperv } from './helpers';

const PTY = join(FIXTURES, 'pty-run.py');
const hasPython = spawnSync('python3', ['-c', 'import pty, termios']).status === 0;
const ptys: ChildProcess[] = [];
after(async () => {
  for (const p of ptys) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  await killAll();
});

/** Strips the escape sequences: what a person sees, line by line (each frame starts at the cursor's home). */
function visible(s: string): string[] {
  return s.replace(/\x1b\[H/g, '\n').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').split(/\r*\n/);
}

class Pty {
  readonly child: ChildProcess;
  out = '';
  err = '';
  readonly exited: Promise<void>;
  constructor(rows: number, cols: number, args: string[], runDir: string) {
    this.child = spawn('python3', [PTY, String(rows), String(cols), process.execPath, CLI, ...args],
      { env: { ...process.env, SUPERV_RUN_DIR: runDir }, stdio: ['pipe', 'pipe', 'pipe'] });
    ptys.push(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.out += d; });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.err += d; });
    this.exited = new Promise((r) => this.child.on('exit', () => r()));
  }
  send(line: string): void { this.child.stdin!.write(line + '\n'); }
  async waitOut(pred: (out: string) => boolean, what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred(this.out)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${JSON.stringify(this.out.slice(-2000))}\n${this.err}`);
      await sleep(100);
    }
  }
}

describe('superv top', { skip: !hasPython && 'python3 with pty is not installed' }, () => {
  test('live view on a pseudo-terminal: fits 80 columns, redraws on resize, q quits and restores the terminal', async () => {
    const { port, runDir } = await startSuperv(join(FIXTURES, 'app.js'), ['-w', '2', '--slow', '0'], { name: 'topapp' });
    void get(port, '/wait?ms=60000', { timeoutMs: 70_000 }).catch(() => undefined);
    const pids = (await cli(runDir, 'status', 'topapp', '--json')).stdout;
    const workerPids = (JSON.parse(pids) as MasterStatus).workers.map((w) => w.pid);

    const t = new Pty(24, 80, ['top', 'topapp'], runDir);
    await t.waitOut((o) => o.includes('\x1b[?1049h') && workerPids.every((p) => o.includes(String(p))) && o.includes('GET /wait'), 'the first frame with both workers and the in-flight request');
    // A second refresh measures requests/s.
    await t.waitOut((o) => (o.match(/superv top {2}topapp/g) ?? []).length >= 2, 'a refresh');
    const frame = visible(t.out);
    assert.ok(frame.every((l) => l.length <= 80), `every line fits 80 columns:\n${frame.filter((l) => l.length > 80).join('\n')}`);
    assert.ok(frame.some((l) => /PID\s+STATE\s+CPU%\s+RSS\s+REQ\/S\s+INFL\s+LOOP\s+OLDEST REQUEST/.test(l)));
    assert.ok(!frame.some((l) => l.includes('SERVED')), 'no wide columns at 80');

    const before = t.out.length;
    t.send('resize 30 120');
    await t.waitOut((o) => o.slice(before).includes('SERVED'), 'a redraw with the wide columns after the resize');
    assert.ok(visible(t.out.slice(before)).every((l) => l.length <= 120));

    t.send('key "q"');
    await t.exited;
    assert.match(t.err, /^exit 0 icanon=1 echo=1$/m, 'exit 0, the terminal back in canonical mode with echo');
    assert.ok(t.out.trimEnd().endsWith('\x1b[?1049l'), 'the alternate screen left last');

    // Ctrl-C quits the same way (a byte in raw mode, not a signal).
    const c = new Pty(24, 80, ['top', 'topapp'], runDir);
    await c.waitOut((o) => o.includes('OLDEST REQUEST'), 'the first frame');
    c.send('key "\\u0003"');
    await c.exited;
    assert.match(c.err, /^exit 0 icanon=1 echo=1$/m);
  });

  test('without a terminal: an error and exit 2; --once prints one snapshot', async () => {
    const { runDir } = await startSuperv(join(FIXTURES, 'app.js'), ['-w', '1'], { name: 'topnotty' });
    const r = await cli(runDir, 'top', 'topnotty');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /top needs a terminal: stdout is not a TTY; use superv top --once/);
    const once = await cli(runDir, 'top', 'topnotty', '--once');
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /^superv top {2}topnotty {2}master \d+/);
    assert.match(once.stdout, /^ +1 +\d+ ready +[\d.]+ +\d+M +[\d.]+ +0 /m, 'one worker row with CPU, RSS and requests/s');
    assert.ok(once.stdout.split('\n').every((l) => l.length <= 80));
  });
});

test('renderTop: 80 columns, rates, dumps, a long route cut', () => {
  const status = {
    name: 'api', pid: 10, app: '/srv/app.js', uptimeMs: 3_600_000, phase: 'running', workersWanted: 2, restarts: 1, dumpDir: '/d',
    memory: { rss: 0, heapUsed: 0, heapTotal: 0 },
    workers: [
      { id: 1, pid: 101, state: 'ready', uptimeMs: 1000, served: 50, inflight: 3, upgraded: 0, cpuPercent: 12.5, rss: 80 * 2 ** 20, loopDelayP99Ms: 4,
        oldest: { method: 'GET', url: '/users/12345/orders/' + 'a'.repeat(200) + '?x=1', ageMs: 2500 } },
      { id: 2, pid: 102, state: 'dumping', uptimeMs: 1000, served: 7, inflight: 0, upgraded: 0 },
    ],
  } as MasterStatus;
  const rates = requestRates([{ pid: 101, served: 30 }], status.workers, 2);
  assert.equal(rates.get(101), 10);
  assert.equal(rates.has(102), false, 'a worker new since the last poll has no rate yet');
  const lines = renderTop({ status, rates, dumps: ['2026-11-28T15-30-01.123Z-api-w2-102-timeout.json'], now: 0 }, 80, 50);
  assert.ok(lines.every((l) => l.length <= 80));
  assert.ok(lines.some((l) => /^ +1 +101 ready +12\.5 +80M +10\.0 +3 +4ms {2}GET \/users\/:id\/orders\//.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => l.endsWith('…')), 'the long route is cut with an ellipsis');
  assert.ok(lines.includes('   15:30:01Z  timeout  w2 pid 102'));
  assert.equal(dumpLine('not-a-dump'), 'not-a-dump');
  assert.equal(renderTop({ status, rates, dumps: [], now: 0 }, 80, 3).length, 3, 'a short terminal keeps the top');
});
