// Renders inspector values (Runtime.RemoteObject, as returned by Runtime.getProperties with generatePreview)
// into the dump's bounded ValuePreview. Pure functions: no inspector calls, so a frame's locals cost one
// getProperties per scope and nothing per value. Every string that reaches the dump is truncated here.

import type { Debugger, Runtime } from 'node:inspector';
import type { ValuePreview } from './types';

/** A value's description: long enough for an id, a SQL fragment or a URL, short enough for 30 locals × 5 frames. */
export const MAX_VALUE_CHARS = 200;
/** One property of an object inside a preview. */
export const MAX_PROP_CHARS = 100;
export const MAX_PROPS = 10;
export const MAX_NAME_CHARS = 100;
export const MAX_LOCALS = 30;
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

/**
 * Merges the properties of a frame's scopes (innermost first, so an inner name shadows an outer one) into at
 * most MAX_LOCALS previews. `thisObject` comes last and only if there is room: it is often large and rarely the clue.
 */
export function localsOf(
  scopes: ReadonlyArray<{ type: string; props: readonly Runtime.PropertyDescriptor[] }>,
  thisObject?: Runtime.RemoteObject,
): Record<string, ValuePreview> {
  const out = new Map<string, ValuePreview>();
  let more = false;
  for (const scope of scopes) {
    for (const d of scope.props) {
      if (!d.value || (scope.type === 'closure' && !isFrameState(d.name, d.value))) continue;
      const name = truncate(d.name, MAX_NAME_CHARS);
      if (out.has(name)) continue;
      if (out.size >= MAX_LOCALS) { more = true; break; }
      out.set(name, previewValue(d.value));
    }
  }
  if (thisObject && out.size < MAX_LOCALS && isInterestingThis(thisObject)) out.set('this', previewValue(thisObject));
  if (more) out.set(MORE_KEY, { type: 'note', value: `more than ${MAX_LOCALS} variables: the rest not shown` });
  return Object.fromEntries(out);
}

/**
 * In the enclosing function's scope (often a module's), functions are its declarations and imports, the same
 * in every dump; the data beside them (a cache, a pool, a counter) is what tells this moment apart.
 */
function isFrameState(name: string, v: Runtime.RemoteObject): boolean {
  return v.type !== 'function' && !CJS_WRAPPER_NAMES.has(name);
}

function isInterestingThis(o: Runtime.RemoteObject): boolean {
  if (o.type === 'undefined' || o.subtype === 'null') return false;
  // A plain function called in sloppy mode gets the global object: noise in every frame.
  return o.className !== 'global' && o.className !== 'Window';
}
