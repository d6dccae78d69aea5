// Load through autocannon's programmatic API, always bounded in time: a `duration`, and a guard that stops
// the run if autocannon itself does not come back.

import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Seconds before a request counts as a timeout. */
  timeoutS?: number;
  /** A mix of requests each connection cycles through (paths relative to `url`); default: GET `url`. */
  requests?: autocannon.Request[];
}

export interface LoadResult {
  reqPerSec: number;
  p99Ms: number;
  total: number;
  /** 2xx responses. */
  ok: number;
  /** Socket errors, timeouts included (autocannon counts timeouts in `errors`). */
  errors: number;
  timeouts: number;
  non2xx: number;
  durationS: number;
}

export interface RunningLoad {
  done: Promise<LoadResult>;
  /** Ends the run now; `done` resolves with what was measured so far. */
  stop(): void;
}

export function startLoad(o: LoadOptions): RunningLoad {
  let inst: autocannon.Instance | undefined;
  const done = new Promise<LoadResult>((resolve, reject) => {
    const guard = setTimeout(() => inst?.stop(), (o.durationS + 15) * 1000);
    inst = autocannon({ url: o.url, connections: o.connections, duration: o.durationS, timeout: o.timeoutS ?? 5,
      ...(o.requests ? { requests: o.requests } : {}) }, (err, r) => {
      clearTimeout(guard);
      if (err) { reject(err); return; }
      resolve({
        // Completed 2xx per second of wall time: what the service actually delivered.
        reqPerSec: r.duration > 0 ? r['2xx'] / r.duration : 0,
        p99Ms: r.latency.p99,
        total: r.requests.total,
        ok: r['2xx'],
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
        durationS: r.duration,
      });
    });
  });
  return { done, stop: () => inst?.stop() };
}

export function load(o: LoadOptions): Promise<LoadResult> {
  return startLoad(o).done;
}
