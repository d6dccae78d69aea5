// The apps the CPU-sampling figures (cpu, pprof) load, and the request mix each is loaded with: one place, so the
// two figures measure the same thing. Hello world is the floor (the least work a request can be, where any
// per-request cost shows most); Express is what a real service does per request (a router, middleware, JSON in
// and out), the case issue 26's "≤ 1 % on hello world and Express" names.

import type autocannon from 'autocannon';
import { join } from 'node:path';
import { FIXTURES } from './paths';

export type AppName = 'hello' | 'express';

export interface BenchApp {
  name: AppName;
  /** How the figures' rows name it. */
  label: string;
  file: string;
  /** Polled until it answers 200: the app is up. */
  readyPath: string;
  /** The load: one path, or a mix each connection cycles through. */
  path: string;
  requests?: autocannon.Request[];
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** The Express mix: reads by id (the param route), a listing, a JSON POST, a health check; all 2xx. */
const EXPRESS_REQUESTS: autocannon.Request[] = [
  { method: 'GET', path: '/api/users/42' },
  { method: 'GET', path: '/api/users?limit=10' },
  { method: 'POST', path: '/api/items', headers: JSON_HEADERS, body: JSON.stringify({ name: 'pen', price: 1.5, tags: ['office', 'blue'] }) },
  { method: 'GET', path: '/api/users/7' },
  { method: 'GET', path: '/health' },
];

export const APPS: Record<AppName, BenchApp> = {
  hello: { name: 'hello', label: 'hello world', file: join(FIXTURES, 'hello.js'), readyPath: '/', path: '/' },
  express: { name: 'express', label: 'Express', file: join(FIXTURES, 'express.js'), readyPath: '/health', path: '/health', requests: EXPRESS_REQUESTS },
};
