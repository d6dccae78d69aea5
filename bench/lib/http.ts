// One-shot HTTP requests for readiness and "who answered" checks: a new connection each time (agent: false),
// so the cluster's round-robin hands successive polls to successive workers.

import { get } from 'node:http';
import { sleep } from './proc';

export type Reply = { status: number; body: string } | { error: string };

export function fetchOnce(url: string, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { if (body.length < 4096) body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ error: err.message }));
  });
}

/**
 * Polls `url` every `intervalMs` until a 200 whose body passes `accept`; resolves with the time it came
 * (Date.now()), or undefined at `deadline` (epoch ms).
 */
export async function pollUntil200(url: string, deadline: number, intervalMs = 10,
  accept: (body: string) => boolean = () => true): Promise<number | undefined> {
  while (Date.now() < deadline) {
    const r = await fetchOnce(url, Math.max(50, Math.min(1000, deadline - Date.now())));
    if ('status' in r && r.status === 200 && accept(r.body)) return Date.now();
    await sleep(intervalMs);
  }
  return undefined;
}

/** Fires a request and forgets it: for routes that block a worker until it is killed. */
export function fireAndForget(url: string): void {
  const req = get(url, { agent: false }, (res) => res.resume());
  req.on('error', () => undefined);
  req.setTimeout(120_000, () => req.destroy());
}
