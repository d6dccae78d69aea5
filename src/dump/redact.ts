// Redaction, applied to a whole dump before it touches disk. Pure functions; nothing here throws.
//
// What counts as secret is decided by the *name* a value is filed under (header, query parameter, variable,
// JSON key), split into word parts, plus a few unmistakable shapes in free text (bearer tokens, JWTs, URL
// userinfo, `password=…`). It targets credentials, not personal data: emails, addresses and card numbers
// pass through. Known gaps: secrets in URL path segments (`/reset/<token>`), OAuth `?code=`, and values
// under innocent names.

import type { Dump, RequestInfo } from './types';

export const REDACTED = '[redacted]';

/**
 * Word parts that make a name secret. A name is split at camelCase humps, digits and any non-alphanumeric
 * character (`X-Api-Key` → x, api, key; `dbPassword2` → db, password, 2), lower-cased, and is secret when one
 * part is in this list, or when the parts run together are (`apiKeys`, `Session-ID`).
 * `key` is a part on purpose (`apiKey`, `private_key`, `SecretKey`, and Google's `?key=`): the cost is that a
 * local named `key` or `cacheKey` is hidden too. `keys` is not, being almost always a list of property names
 * (`Object.keys`), and whole words that merely contain "key" (`keyboard`, `monkey`) never match.
 */
export const SECRET_WORDS: ReadonlySet<string> = new Set([
  'password', 'passwords', 'passwd', 'pwd', 'pass', 'passphrase',
  'secret', 'secrets', 'token', 'tokens',
  'key', 'apikey', 'apikeys', 'privatekey',
  'auth', 'oauth', 'authorization', 'credential', 'credentials', 'bearer', 'jwt', 'saml', 'assertion',
  'session', 'sessionid', 'sid', 'cookie', 'cookies', 'csrf', 'xsrf',
  'signature', 'sig', 'otp', 'pin',
]);

/** Parts ending in these are secret even when run together without a hump: `accesstoken`, `clientsecret`. */
const SECRET_SUFFIXES = ['password', 'passwd', 'secret', 'token', 'apikey'];

/**
 * The narrower list for `name=value` in free text (SQL, messages), where identifiers are ambiguous:
 * `SET session_replication_role = replica` must survive. There `key` only counts as the last part of a
 * compound (`AccountKey=`, `api_key=`), never alone.
 */
const TEXT_WORDS: ReadonlySet<string> = new Set([
  'password', 'passwords', 'passwd', 'pwd', 'pass', 'passphrase', 'secret', 'secrets', 'token', 'tokens',
  'apikey', 'apikeys', 'privatekey', 'credential', 'credentials', 'jwt', 'sessionid',
]);

function words(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2') // APIKey → API Key
    .replace(/([a-zA-Z])([0-9])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
}

function matches(parts: string[], set: ReadonlySet<string>): boolean {
  const hit = (w: string): boolean => set.has(w) || SECRET_SUFFIXES.some((s) => w.endsWith(s));
  return parts.some(hit) || hit(parts.join(''));
}

/** True when a header, parameter, variable or key of this name should never have its value written. */
export function isSecretName(name: string): boolean {
  return matches(words(String(name)), SECRET_WORDS);
}

function isTextSecretName(name: string): boolean {
  const parts = words(name);
  return matches(parts, TEXT_WORDS) || (parts.length > 1 && parts[parts.length - 1] === 'key');
}

// Headers whose value is a URL that may carry a token in its query.
const URL_HEADER = /^(referr?er|location|content-location|.*-ur[il])$/i;

export function redactHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(h)) {
    const v = typeof raw === 'string' ? raw : String(raw);
    setOwn(out, name, isSecretName(name) ? REDACTED : URL_HEADER.test(name) ? redactUrl(v) : redactText(v));
  }
  return out;
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

// Untouched pairs keep their exact bytes: only the value of a secret pair is replaced.
function redactParams(qs: string): string {
  return qs
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const name = pair.slice(0, eq);
      return isSecretName(decodeName(name)) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
}

// A user alone is redacted too: git-style URLs put the token there (`https://<token>@github.com`).
function redactUserinfo(base: string): string {
  const m = /^([a-z][a-z0-9+.-]*:)?\/\/([^/]*)/i.exec(base);
  if (m === null) return base;
  const authority = m[2] ?? '';
  const at = authority.lastIndexOf('@');
  if (at < 0) return base;
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  const safe = colon < 0 ? REDACTED : `${userinfo.slice(0, colon)}:${REDACTED}`;
  return `${m[1] ?? ''}//${safe}${authority.slice(at)}${base.slice(m[0].length)}`;
}

/** Redacts secret query (and fragment) parameters and URL userinfo; everything else stays byte-identical. */
export function redactUrl(url: string): string {
  try {
    let rest = String(url);
    let fragment = '';
    let query = '';
    const hash = rest.indexOf('#');
    if (hash >= 0) [rest, fragment] = [rest.slice(0, hash), rest.slice(hash + 1)];
    const q = rest.indexOf('?');
    if (q >= 0) [rest, query] = [rest.slice(0, q), rest.slice(q + 1)];
    return (
      redactUserinfo(rest) +
      (q >= 0 ? `?${redactParams(query)}` : '') +
      // OAuth's implicit flow puts `access_token=` in the fragment.
      (hash >= 0 ? `#${redactParams(fragment)}` : '')
    );
  } catch {
    return `${REDACTED} url`;
  }
}

const ABS_URL = /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>`]+/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*/gi;
const BASIC = /\b(Basic)\s+([A-Za-z0-9+/]{6,}={0,2})/g;
const SQL_PASSWORD = /\b((?:PASSWORD|IDENTIFIED(?:\s+WITH\s+\S+)?\s+BY)\s+)('(?:[^']|'')*'|"[^"]*")/gi;
const JSON_PAIR = /"([^"\\]{1,100})"(\s*:\s*)"((?:[^"\\]|\\.)*)"/g;
// `[redacted]` first in the value alternatives keeps redactText idempotent.
const KV_PAIR =
  /(^|[^A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_.-]{0,63})(\s*[=:]\s*)(\[redacted\]|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s;&,'")\]}]+)/g;

// "Basic authentication" must survive: only base64 that decodes to printable `user:pass` is a credential.
function isBasicCredential(b64: string): boolean {
  const text = Buffer.from(b64, 'base64').toString('latin1');
  return text.includes(':') && /^[\x20-\x7e]+$/.test(text);
}

/**
 * Conservative redaction of free text (SQL, messages, command lines): URLs inside it (userinfo, secret
 * parameters), JWTs, `Bearer …`, `Basic <user:pass>`, SQL `PASSWORD '…'` / `IDENTIFIED BY '…'`, JSON
 * `"secretName": "…"`, and `password=…`-style pairs of the narrow text list.
 */
export function redactText(s: string): string {
  try {
    return String(s)
      .replace(ABS_URL, (u) => redactUrl(u))
      .replace(JWT, REDACTED)
      .replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`)
      .replace(BASIC, (m, scheme: string, b64: string) => (isBasicCredential(b64) ? `${scheme} ${REDACTED}` : m))
      .replace(SQL_PASSWORD, (_m, head: string, v: string) => `${head}${v[0]}${REDACTED}${v[0]}`)
      .replace(JSON_PAIR, (m, name: string, sep: string) => (isSecretName(name) ? `"${name}"${sep}"${REDACTED}"` : m))
      .replace(KV_PAIR, (m, pre: string, name: string, sep: string, v: string) => {
        if (!isTextSecretName(name)) return m;
        const quote = v[0] === "'" || v[0] === '"' ? v[0] : '';
        return `${pre}${name}${sep}${quote}${REDACTED}${quote}`;
      });
  } catch {
    return `${REDACTED} text`;
  }
}

export function redactRequest(r: RequestInfo): RequestInfo {
  // The generic walk first, so that fields added to RequestInfo later are not written raw.
  const out = { ...(redactValue(r) as RequestInfo), url: redactUrl(r.url) };
  if (r.headers !== undefined) out.headers = redactHeaders(r.headers);
  return out;
}

// ---- walking a whole dump ----

const MAX_DEPTH = 32;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

// A plain `out[k] = v` with k === '__proto__' would replace the prototype instead of writing a key.
function setOwn(o: object, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function looksLikeUrl(s: string): boolean {
  return s.length < 8192 && !/\s/.test(s) && /^([a-z][a-z0-9+.-]*:\/\/|\/)/i.test(s);
}

function redactString(s: string): string {
  return looksLikeUrl(s) ? redactUrl(s) : redactText(s);
}

// `[{ name: 'authorization', value: '…' }]`: header lists as some clients report them.
function isSecretPair(o: Record<string, unknown>): boolean {
  const n = typeof o.name === 'string' ? o.name : typeof o.key === 'string' ? o.key : undefined;
  return n !== undefined && 'value' in o && isSecretName(n);
}

function hidden(v: unknown): unknown {
  // null/boolean carry no secret and say something ("no token", "auth: true").
  return v === null || v === undefined || typeof v === 'boolean' ? v : REDACTED;
}

/**
 * Generic walk for JSON of unknown shape (state providers, future dump fields): values under secret keys are
 * hidden, URL-looking strings go through redactUrl and every other string through redactText.
 */
export function redactValue(v: unknown, depth = 0, path: object[] = []): unknown {
  if (typeof v === 'string') return redactString(v);
  if (typeof v === 'bigint') return String(v);
  if (!isObject(v)) return v;
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return redactValue(toJSON.call(v), depth, path);
  if (depth >= MAX_DEPTH) return `[dropped: deeper than ${MAX_DEPTH}]`;
  if (path.includes(v)) return '[dropped: cycle]';
  path.push(v);
  try {
    if (Array.isArray(v)) return v.map((x) => redactValue(x, depth + 1, path));
    const out: Record<string, unknown> = {};
    const pair = isSecretPair(v);
    for (const [k, x] of Object.entries(v)) {
      const secret = isSecretName(k) || (pair && k === 'value');
      setOwn(out, k, secret ? hidden(x) : redactValue(x, depth + 1, path));
    }
    return out;
  } finally {
    path.pop();
  }
}

type Handler = (v: unknown) => unknown;

/** Runs each field through its handler (or the generic walk); a field whose handler throws is dropped. */
function fields(v: unknown, handlers: Record<string, Handler>, where: string, notes: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!isObject(v)) return out;
  // Keys first and values inside the try: Object.entries would run every getter before the loop.
  for (const k of Object.keys(v)) {
    const h = Object.hasOwn(handlers, k) ? handlers[k] : undefined;
    try {
      const x = v[k];
      // An absent part stays absent: a handler must not invent an empty capture.
      if (x === undefined) continue;
      const r = h !== undefined ? h(x) : redactValue(x);
      if (r !== undefined) setOwn(out, k, r);
    } catch (e) {
      notes.push(`${where}${k}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return out;
}

/**
 * Node keeps raw headers as a flat [name, value, name, value…] array (`rawHeaders`, the parser's
 * `headers` local): in an array preview, the element after a secret-looking header name is a secret.
 */
function redactPairs(props: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...props };
  for (const [k, v] of Object.entries(props)) {
    if (!/^\d+$/.test(k) || typeof v !== 'string') continue;
    const name = v.replace(/^"|"$/g, '');
    const next = String(Number(k) + 1);
    if (isSecretName(name) && next in out) setOwn(out, next, `"${REDACTED}"`);
  }
  return out;
}

function redactLocals(v: unknown): unknown {
  if (!isObject(v)) return redactValue(v);
  const out: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(v)) {
    const type = isObject(p) && typeof p.type === 'string' ? p.type : 'unknown';
    if (isSecretName(name)) { setOwn(out, name, { type, value: REDACTED }); continue; }
    // Object previews' props go through the generic walk, which hides secret-named props.
    const pv = isObject(p) && isObject(p.props) ? { ...p, props: redactPairs(p.props) } : p;
    setOwn(out, name, redactValue(pv));
  }
  return out;
}

// One malformed request drops itself, not the whole list.
function requests(where: string, notes: string[]): Handler {
  return (v) => {
    if (!Array.isArray(v)) return redactValue(v);
    const out: RequestInfo[] = [];
    for (const r of v) {
      try {
        out.push(redactRequest(r as RequestInfo));
      } catch (e) {
        notes.push(`${where}[]: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return out;
  };
}

/**
 * A redacted copy of a dump. Never throws: a part whose redaction fails is dropped and named at the end of
 * `summary` (types.ts has no field for it), because losing a part beats losing the dump or leaking it.
 */
export function redactDump(d: Dump): Dump {
  const notes: string[] = [];
  const request: Handler = (r) => redactRequest(r as RequestInfo);
  const frame: Handler = (f) => fields(f, { locals: redactLocals }, 'capture.stack.', notes);
  const out = fields(
    d,
    {
      request,
      collateral: requests('collateral', notes),
      capture: (c) =>
        fields(
          c,
          {
            running: request,
            inflight: requests('capture.inflight', notes),
            stack: (s) => (Array.isArray(s) ? s.map(frame) : redactValue(s)),
          },
          'capture.',
          notes,
        ),
      master: (m) =>
        fields(
          m,
          { lastHeartbeat: (h) => fields(h, { oldest: requests('master.lastHeartbeat.oldest', notes) }, 'master.lastHeartbeat.', notes) },
          'master.',
          notes,
        ),
    },
    '',
    notes,
  );
  // Fields the format requires, restored empty when their redaction failed.
  if (!isObject(out.master)) out.master = { proc: {} };
  if (isObject(out.capture) && !Array.isArray(out.capture.inflight)) out.capture.inflight = [];
  if (notes.length > 0) {
    const summary = typeof out.summary === 'string' ? out.summary : '';
    out.summary = `${summary} [redaction failed, dropped: ${redactText(notes.join('; '))}]`.trim();
  }
  return out as unknown as Dump;
}
