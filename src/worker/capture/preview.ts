// Renders what the capture read into the dump's bounded ValuePreview: the variables scope-reader.ts read on
// the main thread (kind, size, first entries), and the frame's `this` as the inspector describes it. Pure
// functions: no inspector calls. Every string that reaches the dump is truncated here.

import type { Debugger, Runtime } from 'node:inspector';
import type { ValuePreview } from '../../dump/types';
import type { RawNested, RawValue, ReadOptions, ScopeRead } from './scope-reader';

/** A value's description: long enough for an id, a SQL fragment or a URL, short enough for 30 locals × 5 frames. */
export const MAX_VALUE_CHARS = 200;
/** One property of an object inside a preview. */
export const MAX_PROP_CHARS = 100;
export const MAX_PROPS = 10;
export const MAX_NAME_CHARS = 100;
export const MAX_LOCALS = 30;
/** Entries of an Array, a Map, a Set, a typed array or an object the dump shows: the reader reads no more. */
export const MAX_ENTRIES = MAX_PROPS;
/** The key a preview gets when the object had more properties than it shows. */
export const MORE_KEY = '…';

// The CommonJS module wrapper's parameters: in every module-level function's closure scope, never the clue.
const CJS_WRAPPER_NAMES = new Set(['exports', 'require', 'module', '__filename', '__dirname']);

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length} chars)`;
}

function quote(s: string, max: number): string {
  // Truncate before quoting so the quotes stay visible and a 10 MB string is never JSON-escaped whole.
  return JSON.stringify(s.length <= max ? s : s.slice(0, max)) + (s.length <= max ? '' : `… (${s.length} chars)`);
}

function typeOf(o: { type: string; subtype?: string }): string {
  return o.type === 'object' && o.subtype ? o.subtype : o.type;
}

/** A function's description is its whole source text: its first line names it well enough. */
function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl < 0 ? s : `${s.slice(0, nl)} …`;
}

function describe(o: Runtime.RemoteObject): string {
  switch (o.type) {
    case 'string':
      return quote(typeof o.value === 'string' ? o.value : String(o.description ?? ''), MAX_VALUE_CHARS);
    case 'undefined':
      return 'undefined';
    case 'function':
      return truncate(firstLine(o.description ?? 'function'), MAX_VALUE_CHARS);
    case 'number':
    case 'boolean':
    case 'bigint':
      return truncate(o.unserializableValue ?? o.description ?? String(o.value), MAX_VALUE_CHARS);
    default:
      if (o.subtype === 'null') return 'null';
      return truncate(o.description ?? o.className ?? o.type, MAX_VALUE_CHARS);
  }
}

function describeNested(type: string, value: string | undefined, fallback: string): string {
  if (type === 'string') return quote(value ?? '', MAX_PROP_CHARS);
  // V8 previews a function property with an empty value.
  return truncate(value || fallback, MAX_PROP_CHARS);
}

function entryKey(e: Runtime.EntryPreview, i: number): string {
  if (!e.key) return String(i);
  return truncate(describeNested(e.key.type, e.key.description, typeOf(e.key)), MAX_NAME_CHARS);
}

/** One level of an object's own properties (or a Map's/Set's entries), from the preview V8 already built. */
// Maps, then Object.fromEntries: the app's own keys (`__proto__`, `constructor`) must stay plain data.
function propsOf(p: Runtime.ObjectPreview): Record<string, string> | undefined {
  const out = new Map<string, string>();
  let more = p.overflow;
  (p.entries ?? []).forEach((e, i) => {
    if (out.size >= MAX_PROPS) { more = true; return; }
    out.set(entryKey(e, i), describeNested(e.value.type, e.value.description, typeOf(e.value)));
  });
  for (const prop of p.properties) {
    if (out.size >= MAX_PROPS) { more = true; break; }
    out.set(truncate(prop.name, MAX_NAME_CHARS), describeNested(prop.type, prop.value, typeOf(prop)));
  }
  if (more) out.set(MORE_KEY, 'more not shown');
  return out.size > 0 ? Object.fromEntries(out) : undefined;
}

export function previewValue(o: Runtime.RemoteObject): ValuePreview {
  const v: ValuePreview = { type: typeOf(o), value: describe(o) };
  if (o.type === 'object' && o.preview) {
    const props = propsOf(o.preview);
    if (props) v.props = props;
  }
  return v;
}

/**
 * Which scopes of a frame hold "its" variables: innermost first, up to and including the first closure (the
 * enclosing function's variables). Module, script and global scopes are the whole app's state, not the frame's.
 */
export function scopesToRead(chain: readonly Debugger.Scope[]): Debugger.Scope[] {
  const out: Debugger.Scope[] = [];
  for (const s of chain) {
    if (s.type === 'local' || s.type === 'block' || s.type === 'catch') out.push(s);
    else if (s.type === 'closure') { out.push(s); break; }
    else if (s.type !== 'with') break;
  }
  return out;
}

/** What scope-reader.ts is asked to read for one scope: the dump's bounds, so nothing unshown is read. */
// In the enclosing function's scope (often a module's), functions are its declarations and imports, the same
// in every dump, and the CommonJS wrapper's parameters never the clue; the data beside them (a cache, a pool,
// a counter) is what tells this moment apart. The reader skips those on the main thread.
export function readOptions(scopeTypes: readonly string[], deadline: number): ReadOptions {
  return {
    closure: scopeTypes.map((t) => t === 'closure'), closureSkips: [...CJS_WRAPPER_NAMES], maxVars: MAX_LOCALS + 1,
    maxEntries: MAX_ENTRIES, maxChars: MAX_VALUE_CHARS, maxNestedChars: MAX_PROP_CHARS, maxKeyChars: MAX_NAME_CHARS,
    deadline,
  };
}

/** A string's head, quoted, and its length when the head is not all of it. */
function quoteHead(head: string, length: number | undefined, max: number): string {
  const total = length ?? head.length;
  const shown = head.length <= max ? head : head.slice(0, max);
  return JSON.stringify(shown) + (total > shown.length ? `… (${total} chars)` : '');
}

function nestedText(n: RawNested): string {
  return n.t === 'string' ? quoteHead(n.d, n.n, MAX_PROP_CHARS) : truncate(n.d, MAX_PROP_CHARS);
}

/** One variable as scope-reader.ts read it: kind, description, size, and its first entries as props. */
export function previewRaw(r: RawValue): ValuePreview {
  const v: ValuePreview = { type: r.t, value: r.t === 'string' ? quoteHead(r.d, r.n, MAX_VALUE_CHARS) : truncate(r.d, MAX_VALUE_CHARS) };
  // A string's size is news only when the value is cut (it then also reads "… (N chars)").
  if (r.n !== undefined && (r.t !== 'string' || r.n > MAX_VALUE_CHARS)) v.size = r.n;
  // Maps, then Object.fromEntries: the app's own keys (`__proto__`, `constructor`) must stay plain data.
  const props = new Map<string, string>();
  for (const [k, n] of (r.p ?? []).slice(0, MAX_ENTRIES)) props.set(truncate(k, MAX_NAME_CHARS), nestedText(n));
  if (r.more === true || (r.p?.length ?? 0) > MAX_ENTRIES) props.set(MORE_KEY, 'more not shown');
  if (r.err !== undefined) props.set(MORE_KEY, `entries not read: ${truncate(r.err, MAX_PROP_CHARS)}`);
  if (props.size > 0) v.props = Object.fromEntries(props);
  return v;
}

/** A scope as read, or why it (or some of its variables) is missing. */
export interface ScopeResult {
  type: string;
  read?: ScopeRead;
  /** Set when nothing of the scope was read: e.g. "not read by the deadline". */
  missing?: string;
}

/**
 * Merges the variables of a frame's scopes (innermost first, so an inner name shadows an outer one) into at
 * most MAX_LOCALS previews. `thisObject` comes last and only if there is room: it is often large and rarely
 * the clue. `missing` says, one sentence per scope, what could not be read.
 */
export function localsOf(
  scopes: readonly ScopeResult[],
  thisObject?: Runtime.RemoteObject,
): { locals: Record<string, ValuePreview>; missing: string[] } {
  const out = new Map<string, ValuePreview>();
  const missing: string[] = [];
  let more = false;
  for (const scope of scopes) {
    if (scope.missing !== undefined || !scope.read) {
      missing.push(`${scope.type} scope: ${scope.missing ?? 'not read'}`);
      continue;
    }
    if (scope.read.unread.length > 0) {
      const names = scope.read.unread.slice(0, 10).map((n) => truncate(n, MAX_NAME_CHARS)).join(', ');
      const rest = scope.read.unread.length > 10 ? ', …' : '';
      missing.push(`${scope.type} scope: ${scope.read.unread.length} variable(s) not read by the deadline: ${names}${rest}`);
    }
    more ||= scope.read.more;
    for (const [rawName, raw] of scope.read.vars) {
      const name = truncate(rawName, MAX_NAME_CHARS);
      if (out.has(name)) continue;
      if (out.size >= MAX_LOCALS) { more = true; break; }
      out.set(name, previewRaw(raw));
    }
  }
  if (thisObject && out.size < MAX_LOCALS && isInterestingThis(thisObject)) out.set('this', previewValue(thisObject));
  if (more) out.set(MORE_KEY, { type: 'note', value: `more than ${MAX_LOCALS} variables: the rest not shown` });
  return { locals: Object.fromEntries(out), missing };
}

function isInterestingThis(o: Runtime.RemoteObject): boolean {
  if (o.type === 'undefined' || o.subtype === 'null') return false;
  // A plain function called in sloppy mode gets the global object: noise in every frame.
  return o.className !== 'global' && o.className !== 'Window';
}
