// The `outbound` provider: http.get and fetch to a local server that holds its answers until the test
// releases them, so "pending" never depends on timing.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { enableRequestContext, setRequestLookup } from '../src/worker/context';
import { installInstrumentation, type OutboundJson, type OutboundState } from '../src/worker/instrument';
import { stateProviders } from '../src/worker/providers';
import { inRequest, lineHere, waitFor as waitUntil } from './instrument-helpers';

installInstrumentation({ recordValues: false });
// The drivers turn the request context on when they load; no driver here.
enableRequestContext();
setRequestLookup((id) => ({ id, method: 'GET', url: `/in/${id}`, startedAt: Date.now(), ageMs: 0 }));

function outbound(): OutboundState {
  const fn = stateProviders().get('outbound');
  assert.ok(fn, 'the outbound provider is registered');
  return fn() as OutboundState;
}

/** The outbound calls here settle quickly: a tighter deadline and poll than the DB tests'. */
function waitFor<T>(what: string, fn: () => T | undefined): Promise<T> {
  return waitUntil(what, fn, 10000, 20);
}

const held: http.ServerResponse[] = [];
const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/now')) res.end('now');
  else held.push(res);
});
let origin = '';

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const r of held.splice(0)) r.end();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function find(state: OutboundState, path: string): OutboundJson | undefined {
  return state.pending.find((p) => p.path === path);
}

test('http.get and fetch waiting for their answers: method, origin, path, age, call site, request', async () => {
  const { got, fetched, getLine, fetchLine } = await inRequest(9, () => {
    const [g, gl] = [new Promise<string>((resolve) => http.get(`${origin}/slow?token=abc`, (r) => { r.setEncoding('utf8'); let b = ''; r.on('data', (d: string) => { b += d; }).on('end', () => resolve(b)); })), lineHere()];
    const [f, fl] = [fetch(`${origin}/api/items?page=2`, { method: 'POST', body: 'x' }).then((r) => r.text()), lineHere()];
    return { got: g, fetched: f, getLine: gl, fetchLine: fl };
  });
  await waitFor('the server to hold both', () => (held.length >= 2 ? true : undefined));

  const state = outbound();
  const g = find(state, '/slow?token=abc');
  assert.ok(g, 'the http.get is listed');
  assert.equal(g.kind, 'http');
  assert.equal(g.method, 'GET');
  assert.equal(g.origin, origin);
  assert.ok(g.ageMs >= 0);
  assert.equal(g.site?.file, __filename);
  assert.equal(g.site?.line, getLine);
  assert.deepEqual(g.request, { id: 9, method: 'GET', url: '/in/9' });
  const f = find(state, '/api/items?page=2');
  assert.ok(f, 'the fetch is listed');
  assert.equal(f.kind, 'fetch');
  assert.equal(f.method, 'POST');
  assert.equal(f.origin, origin);
  assert.equal(f.site?.file, __filename);
  assert.equal(f.site?.line, fetchLine);
  assert.equal(f.request?.id, 9);
  assert.ok(state.summary.some((s) => s.startsWith('GET /in/9 (request 9) has waited') && s.includes(`GET ${origin}/slow (http`)), state.summary.join('\n'));
  assert.ok(!state.summary.some((s) => s.includes('token')), 'sentences leave the query string out');

  for (const r of held.splice(0)) r.end('done');
  assert.equal(await got, 'done');
  assert.equal(await fetched, 'done');
  assert.equal(find(outbound(), '/slow?token=abc'), undefined);
  assert.equal(find(outbound(), '/api/items?page=2'), undefined);
});

test('calls that fail or are aborted leave the table', async () => {
  // A port nothing listens on: connection refused.
  const dead = http.createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise((resolve) => dead.close(resolve));
  await new Promise<void>((resolve) => http.get(`http://127.0.0.1:${deadPort}/refused`).on('error', () => resolve()));
  await assert.rejects(fetch(`http://127.0.0.1:${deadPort}/refused-fetch`));

  const ac = new AbortController();
  const aborted = fetch(`${origin}/abort-me`, { signal: ac.signal });
  const req = http.get(`${origin}/destroy-me`);
  req.on('error', () => undefined);
  await waitFor('both to be pending', () => (find(outbound(), '/abort-me') && find(outbound(), '/destroy-me') ? true : undefined));
  ac.abort();
  req.destroy();
  await assert.rejects(aborted);
  await waitFor('the table to empty', () => (outbound().pending.length === 0 ? true : undefined));
  const quick = await fetch(`${origin}/now`).then((r) => r.text());
  assert.equal(quick, 'now');
  assert.deepEqual(outbound().pending, []);
});
