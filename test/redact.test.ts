import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  REDACTED,
  isSecretName,
  redactDump,
  redactHeaders,
  redactText,
  redactUrl,
  redactValue,
} from '../src/dump/redact';
import { DUMP_VERSION, type Dump, type RequestInfo } from '../src/dump/types';

test('isSecretName: secret word parts in any case style', () => {
  for (const n of [
    'password', 'PASSWORD', 'dbPassword', 'db_password', 'passwd', 'pwd', 'secret', 'clientSecret',
    'token', 'accessToken', 'access_token', 'accesstoken', 'refresh-token', 'api_key', 'apikey', 'apiKey',
    'api-key', 'APIKey', 'X-Api-Key', 'x-auth-token', 'key', 'private_key', 'secretKey', 'apiKeys',
    'auth', 'Authorization', 'proxy-authorization', 'session', 'sessionid', 'Session-ID', 'cookie',
    'set-cookie', 'credentials', 'jwt', 'bearer', 'X-Hub-Signature', 'otp', 'pin', 'password2', '_csrf',
  ]) {
    assert.equal(isSecretName(n), true, n);
  }
});

test('isSecretName: innocent names, including ones that merely contain a secret word', () => {
  for (const n of [
    'keyboard', 'monkey', 'keys', 'author', 'authorId', 'username', 'user', 'id', 'url', 'method',
    'content-type', 'accept', 'passive', 'bypass', 'tokenizer', 'pinned', 'host', 'sessions', 'count', '',
  ]) {
    assert.equal(isSecretName(n), false, n);
  }
});

test('redactHeaders: credentials hidden, the rest kept, referer query cleaned', () => {
  const out = redactHeaders({
    authorization: 'Bearer abc.def.ghi',
    'Proxy-Authorization': 'Basic dTpw',
    cookie: 'sid=1',
    'set-cookie': 'sid=2',
    'x-api-key': 'k',
    'api-key': 'k',
    'x-auth-token': 't',
    'x-goog-api-key': 'k',
    'content-type': 'application/json',
    'user-agent': 'curl/8',
    referer: 'https://a.example/cb?state=ok&access_token=abc',
  });
  assert.deepEqual(out, {
    authorization: REDACTED,
    'Proxy-Authorization': REDACTED,
    cookie: REDACTED,
    'set-cookie': REDACTED,
    'x-api-key': REDACTED,
    'api-key': REDACTED,
    'x-auth-token': REDACTED,
    'x-goog-api-key': REDACTED,
    'content-type': 'application/json',
    'user-agent': 'curl/8',
    referer: `https://a.example/cb?state=ok&access_token=${REDACTED}`,
  });
});

test('redactUrl: secret params only, other bytes identical', () => {
  assert.equal(
    redactUrl('/search?q=a%20b+c&token=xyz&page=2&Api-Key=1&x=%E2%82%AC&flag&=v'),
    `/search?q=a%20b+c&token=${REDACTED}&page=2&Api-Key=${REDACTED}&x=%E2%82%AC&flag&=v`,
  );
  // Encoded names are decoded before the check.
  assert.equal(redactUrl('/p?access%5Ftoken=1&user%5Bpassword%5D=2'), `/p?access%5Ftoken=${REDACTED}&user%5Bpassword%5D=${REDACTED}`);
  assert.equal(redactUrl('/cb#access_token=abc&expires_in=3600'), `/cb#access_token=${REDACTED}&expires_in=3600`);
  assert.equal(redactUrl('/a/b?c=d#section-2'), '/a/b?c=d#section-2');
  assert.equal(redactUrl('/plain'), '/plain');
});

test('redactUrl: userinfo in absolute URLs', () => {
  assert.equal(redactUrl('https://user:pass@host.example:8443/p?q=1'), `https://user:${REDACTED}@host.example:8443/p?q=1`);
  assert.equal(redactUrl('https://ghp_abcdef@github.com/o/r.git'), `https://${REDACTED}@github.com/o/r.git`);
  assert.equal(redactUrl('//u:p@cdn.example/x'), `//u:${REDACTED}@cdn.example/x`);
  // An @ in the path is not userinfo.
  assert.equal(redactUrl('https://registry.example/@scope/pkg'), 'https://registry.example/@scope/pkg');
  assert.equal(redactUrl('http://[::1]:80/x'), 'http://[::1]:80/x');
});

test('redactUrl: malformed input does not throw', () => {
  for (const u of ['%', '/?%zz=1&%E0%A4%A=2', '::::', 'http://', '?&&==&', '#', '\u0000']) {
    assert.equal(typeof redactUrl(u), 'string');
  }
  assert.equal(redactUrl('/?%zz=1'), '/?%zz=1');
  // An undecodable name is still checked as written.
  assert.equal(redactUrl('/?token%zz=1'), `/?token%zz=${REDACTED}`);
  assert.equal(typeof redactUrl(undefined as unknown as string), 'string');
});

test('redactText: connection strings, bearer tokens, JWTs, password pairs', () => {
  assert.equal(redactText('connect postgres://app:s3cr3t@db:5432/prod failed'), `connect postgres://app:${REDACTED}@db:5432/prod failed`);
  assert.equal(redactText('Authorization: Bearer abcdefgh12345'), `Authorization: Bearer ${REDACTED}`);
  assert.equal(redactText('sent eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x ok'), `sent ${REDACTED} ok`);
  assert.equal(redactText('host=db user=app password=hunter2 dbname=x'), `host=db user=app password=${REDACTED} dbname=x`);
  assert.equal(redactText('Server=db;User Id=sa;Password=p@ss;Database=x'), `Server=db;User Id=sa;Password=${REDACTED};Database=x`);
  assert.equal(redactText('DefaultEndpointsProtocol=https;AccountKey=abc==;x=1'), `DefaultEndpointsProtocol=https;AccountKey=${REDACTED};x=1`);
  assert.equal(redactText("ALTER ROLE app WITH PASSWORD 'it''s'"), `ALTER ROLE app WITH PASSWORD '${REDACTED}'`);
  assert.equal(redactText("CREATE USER u IDENTIFIED BY 'x'"), `CREATE USER u IDENTIFIED BY '${REDACTED}'`);
  assert.equal(redactText("SELECT * FROM users WHERE api_token = 'abc' AND id = 3"), `SELECT * FROM users WHERE api_token = '${REDACTED}' AND id = 3`);
  assert.equal(redactText('{"user":"bob","password":"x\\"y","n":1}'), `{"user":"bob","password":"${REDACTED}","n":1}`);
  assert.equal(redactText('Authorization: Basic dXNlcjpwYXNz'), `Authorization: Basic ${REDACTED}`);
});

test('redactText: conservative on ordinary text and idempotent', () => {
  for (const s of [
    'SELECT id, name FROM users WHERE id = $1',
    'SET session_replication_role = replica',
    'for key=value pairs use the map',
    'Basic authentication is disabled',
    'bearer of bad news',
    'GET /health 200 3ms',
    'time=2026-11-28T15:30:01.123Z level=info',
  ]) {
    assert.equal(redactText(s), s);
  }
  const once = redactText('x?token=1 password=2 postgres://a:b@h Bearer abcdefghij');
  assert.equal(redactText(once), once);
});

test('redactValue: unknown JSON walked generically', () => {
  const state = {
    db: [
      { sql: "UPDATE users SET password = 'x' WHERE id = 1", connectionString: 'postgres://u:pw@db/x', ageMs: 12 },
    ],
    outbound: [{ url: 'https://api.example/v1?api_key=abc&x=1', headers: { Authorization: 'Bearer zzzzzzzzzz', accept: '*/*' } }],
    app: { sessionToken: { nested: 'x' }, password: 42, auth: true, token: null, keys: ['a', 'b'] },
    list: [{ name: 'Cookie', value: 'sid=1' }, { name: 'accept', value: 'x' }],
    big: 10n,
  };
  assert.deepEqual(redactValue(state), {
    db: [{ sql: `UPDATE users SET password = '${REDACTED}' WHERE id = 1`, connectionString: `postgres://u:${REDACTED}@db/x`, ageMs: 12 }],
    outbound: [{ url: `https://api.example/v1?api_key=${REDACTED}&x=1`, headers: { Authorization: REDACTED, accept: '*/*' } }],
    app: { sessionToken: REDACTED, password: REDACTED, auth: true, token: null, keys: ['a', 'b'] },
    list: [{ name: 'Cookie', value: REDACTED }, { name: 'accept', value: 'x' }],
    big: '10',
  });
});

test('redactValue: cycles, depth, __proto__ keys', () => {
  const a: Record<string, unknown> = { x: 1 };
  a.self = a;
  assert.deepEqual(redactValue(a), { x: 1, self: '[dropped: cycle]' });
  // A shared (non-cyclic) reference is not a cycle.
  const shared = { v: 1 };
  assert.deepEqual(redactValue({ a: shared, b: shared }), { a: { v: 1 }, b: { v: 1 } });
  let deep: unknown = 'leaf';
  for (let i = 0; i < 100; i++) deep = { d: deep };
  assert.match(JSON.stringify(redactValue(deep)), /dropped: deeper than/);
  const evil = JSON.parse('{"__proto__": {"password": "x"}}') as unknown;
  const out = redactValue(evil) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.deepEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { password: REDACTED });
});

function req(id: number, url: string): RequestInfo {
  return { id, method: 'GET', url, startedAt: 1, ageMs: 2, remote: '10.0.0.1', headers: { cookie: 'c', accept: 'x' } };
}

function sampleDump(): Dump {
  return {
    version: DUMP_VERSION,
    reason: 'timeout',
    time: '2026-11-28T15:30:01.123Z',
    summary: 'GET /login?password=hunter2 ran 30 s',
    supervisor: { name: 's', pid: 1, app: '/app/server.js', host: 'h' },
    worker: { id: 1, pid: 2, uptimeMs: 3, served: 4 },
    request: req(1, '/login?password=hunter2&next=/home'),
    capture: {
      complete: true,
      elapsedMs: 5,
      loop: { blocked: true, blockedForMs: 30000 },
      running: req(1, '/a?token=t'),
      inflight: [req(1, '/a?token=t'), req(2, '/b?q=1')],
      stack: [
        {
          function: 'handler',
          file: '/app/server.js',
          line: 1,
          column: 2,
          app: true,
          locals: {
            dbPassword: { type: 'string', value: "'hunter2'" },
            user: { type: 'object', value: 'Object', props: { name: "'bob'", apiKey: "'k'" } },
            query: { type: 'string', value: "'SELECT 1 WHERE password = 1'" },
            n: { type: 'number', value: '3' },
            headers: { type: 'array', value: 'Array(4)', props: { 0: '"X-Api-Key"', 1: '"k-123"', 2: '"Accept"', 3: '"*/*"' } },
          },
        },
      ],
      state: { pg: { queries: [{ text: "SELECT * FROM t WHERE token = 'abc'", headers: { 'x-api-key': 'k' } }] } },
    },
    master: {
      cpuPercent: 99,
      proc: { state: 'R', children: [{ pid: 9, cmdline: 'mysql --password=secret -h db' }] },
      lastHeartbeat: { ageMs: 1, inflight: 1, oldest: [req(3, '/c?session=s')] },
    },
    action: 'killed',
  };
}

test('redactDump: every part of a dump, original untouched', () => {
  const d = sampleDump();
  const before = JSON.stringify(d);
  const r = redactDump(d);
  assert.equal(JSON.stringify(d), before);
  assert.equal(r.summary, `GET /login?password=${REDACTED} ran 30 s`);
  assert.equal(r.request?.url, `/login?password=${REDACTED}&next=/home`);
  assert.deepEqual(r.request?.headers, { cookie: REDACTED, accept: 'x' });
  assert.equal(r.capture?.running?.url, `/a?token=${REDACTED}`);
  assert.deepEqual(r.capture?.inflight.map((i) => i.url), [`/a?token=${REDACTED}`, '/b?q=1']);
  assert.equal(r.capture?.inflight[1]?.headers?.cookie, REDACTED);
  const locals = r.capture?.stack?.[0]?.locals;
  assert.deepEqual(locals?.dbPassword, { type: 'string', value: REDACTED });
  assert.deepEqual(locals?.user, { type: 'object', value: 'Object', props: { name: "'bob'", apiKey: REDACTED } });
  assert.equal(locals?.query?.value, `'SELECT 1 WHERE password = ${REDACTED}'`);
  assert.deepEqual(locals?.n, { type: 'number', value: '3' });
  assert.deepEqual(locals?.headers?.props, { 0: '"X-Api-Key"', 1: `"${REDACTED}"`, 2: '"Accept"', 3: '"*/*"' }, 'raw header pairs');
  assert.deepEqual(r.capture?.state, {
    pg: { queries: [{ text: `SELECT * FROM t WHERE token = '${REDACTED}'`, headers: { 'x-api-key': REDACTED } }] },
  });
  assert.equal(r.master.proc.children?.[0]?.cmdline, `mysql --password=${REDACTED} -h db`);
  assert.equal(r.master.lastHeartbeat?.oldest[0]?.url, `/c?session=${REDACTED}`);
  assert.equal(r.master.cpuPercent, 99);
  assert.equal(r.worker.pid, 2);
  assert.equal(r.action, 'killed');
  assert.doesNotMatch(JSON.stringify(r), /hunter2|secret|'k'|"k"|abc|k-123/);
});

test('redactDump: a part that cannot be redacted is dropped and noted, the rest survives', () => {
  const d = sampleDump();
  // A getter that throws stands in for any bug in a part's redaction.
  Object.defineProperty(d.capture as object, 'stack', { enumerable: true, get: () => { throw new Error('boom'); } });
  (d.capture as { inflight: unknown[] }).inflight.push(null);
  Object.defineProperty(d, 'master', { enumerable: true, get: () => { throw new Error('bad master'); } });
  const r = redactDump(d);
  assert.equal(r.capture?.stack, undefined);
  assert.equal(r.capture?.inflight.length, 2);
  assert.deepEqual(r.master, { proc: {} });
  assert.equal(r.request?.url, `/login?password=${REDACTED}&next=/home`);
  assert.match(r.summary, /redaction failed, dropped: /);
  assert.match(r.summary, /capture\.stack: boom/);
  assert.match(r.summary, /capture\.inflight\[\]: /);
  assert.match(r.summary, /master: bad master/);
});
