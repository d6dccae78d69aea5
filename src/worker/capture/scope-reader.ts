// The function the capture runs ON THE MAIN THREAD on the scopes of a paused frame (passed by object id),
// through Runtime.callFunctionOn with `throwOnSideEffect: true` and `returnByValue`.
// It reads each variable's kind, its size and its first entries only, so a scope costs the same whether it
// holds a 10-element or a 10 M-element Array, a 1 M-entry Map, a 100 MB string or a 50 k-property object.
//
// Why a function of our own and not the inspector's previews (measured on Node 20.20, one local each):
// - `Runtime.getProperties(scope, generatePreview: true)`, the capture until now, makes V8 enumerate every
//   key of every Array and copy every entry of every Map/Set to preview five of them: 3 M-element Array
//   8.3 s, 500 k-entry Map 4.5 s, 400 k-entry Set 7.6 s, 50 k-property object 130 ms.
// - Without previews it is ~1 ms, but still ships every string value whole: a 100 MB string local is a
//   100 MB message, 10–11 s. No getProperties option (`nonIndexedPropertiesOnly`, `accessorPropertiesOnly`)
//   avoids that: they filter properties, not values.
// - This function: 1–16 ms for each of the above (slicing a string is O(1); a Map iterator stops after N).
//
// Side-effect free by construction, with V8 as the backstop:
// - it never reads a property with [[Get]]: only own data descriptors (Object.getOwnPropertyDescriptor), so
//   no getter runs (an accessor shows as `accessor`); it never calls toJSON, toString or valueOf of the app;
// - it touches no Proxy: `util.types.isProxy` (a C++ check that runs no trap) is asked before any
//   reflective call on an object, a prototype or a constructor; a Proxy shows as `Proxy`;
// - builtins are taken from the intrinsics (Map.prototype.entries, the TypedArray length getter, …) and
//   called on values whose brand util.types has checked;
// - `throwOnSideEffect: true` makes V8 refuse anything that would write outside this function's own
//   temporaries (a monkey-patched builtin, an exotic host object's interceptor). V8 makes a refusal
//   uncatchable: the whole call fails, and capture.ts then reads that scope one variable per call, so only
//   the offending variable is lost. Hence the few builtins V8 refuses are avoided here on purpose (see
//   kindOf and objectHead). Ordinary exceptions (a revoked Proxy, a module binding not yet initialised) are
//   caught per value.
//
// The function must be self-contained: it is sent as source text (Function.prototype.toString of the
// compiled function), so it may use no import, no module constant and nothing tsc would emit a helper for.

/** A value one level down (an entry of an Array, a Map, an object): kind and a one-line description. */
export interface RawNested {
  /** typeof, or the object's kind: array, map, set, typedarray, date, regexp, error, proxy, promise, … */
  t: string;
  /** Description; for a string, its first characters. */
  d: string;
  /** Length of a string, an Array or a typed array; size of a Map or a Set; own keys of another object. */
  n?: number;
}

/** A variable: its kind, its description, its size, and its first entries (key → nested value). */
export interface RawValue extends RawNested {
  p?: Array<[string, RawNested]>;
  /** True when the value has more entries than `p` shows. */
  more?: boolean;
  /** Why the entries could not be read (V8 refused a side effect, an exotic object threw). */
  err?: string;
}

export interface ScopeRead {
  vars: Array<[string, RawValue]>;
  /** More variables than `maxVars`: the rest were not read. */
  more: boolean;
  /** Variables left unread because the budget ran out: their names. */
  unread: string[];
}

export interface ReadOptions {
  /**
   * Per scope argument: a closure scope, whose functions and CommonJS wrapper names (`closureSkips`) are the
   * module's, not the frame's state.
   */
  closure: boolean[];
  closureSkips: string[];
  maxVars: number;
  /** Entries of an Array, a Map, a Set, a typed array or an object shown per variable. */
  maxEntries: number;
  /** Characters of a variable's description (and of a string's head). */
  maxChars: number;
  /** Characters of an entry's description. */
  maxNestedChars: number;
  maxKeyChars: number;
  /**
   * Epoch ms (the watchdog's clock is the same wall clock): past it, the remaining variables are only named,
   * in `unread`, so that a late scope still returns what it read, and the ones after it return at once.
   */
  deadline: number;
  /** Read only these variables (the capture's fallback, one variable per call, after a refused side effect). */
  only?: string[];
}

/**
 * The subset of node:util's `types` the reader uses: C++ brand checks that run no JS and that node declares
 * side-effect free (not isTypedArray, isDataView and their kin: JS that V8 refuses under throwOnSideEffect).
 */
export interface UtilTypes {
  isProxy(v: unknown): boolean;
  isMap(v: unknown): boolean;
  isSet(v: unknown): boolean;
  isWeakMap(v: unknown): boolean;
  isWeakSet(v: unknown): boolean;
  isDate(v: unknown): boolean;
  isRegExp(v: unknown): boolean;
  isNativeError(v: unknown): boolean;
  isPromise(v: unknown): boolean;
  isArrayBuffer(v: unknown): boolean;
  isBoxedPrimitive(v: unknown): boolean;
}

type Descriptor = PropertyDescriptor | undefined;

/**
 * Reads the given scope objects, in order. `this` is node:util's `types`, fetched once per capture (fetching
 * it here, under V8's side-effect checks, cost time in proportion to the heap: see capture.ts). An object met
 * again (the same Map in every frame of a recursion) is read once: the copy costs nothing on this side.
 */
export function readScopes(this: UtilTypes, o: ReadOptions, ...scopes: object[]): ScopeRead[] {
  const types = this;
  const seen = new Map<unknown, RawValue>();
  const gopd = Object.getOwnPropertyDescriptor;
  const protoOf = Object.getPrototypeOf;
  const fnToString = Function.prototype.toString;
  const typedLength = (gopd(protoOf(Uint8Array.prototype) as object, 'length') as PropertyDescriptor).get as () => number;
  const mapSize = (gopd(Map.prototype, 'size') as PropertyDescriptor).get as () => number;
  const setSize = (gopd(Set.prototype, 'size') as PropertyDescriptor).get as () => number;
  const bufferLength = (gopd(ArrayBuffer.prototype, 'byteLength') as PropertyDescriptor).get as () => number;
  const mapEntries = Map.prototype.entries;
  const setValues = Set.prototype.values;
  const dateIso = Date.prototype.toISOString;
  const symbolString = Symbol.prototype.toString;

  /** An own data property's value, or `accessor`; never a [[Get]], never on a Proxy. */
  const own = (obj: object, key: PropertyKey): Descriptor => (types.isProxy(obj) ? undefined : gopd(obj, key));
  const cut = (s: string, max: number): string => (s.length <= max ? s : s.slice(0, max));

  /** The constructor's name as V8's className finds it: first `constructor` data property up the chain. */
  const className = (v: object): string => {
    let p: object | null = v;
    for (let depth = 0; p !== null && depth < 32; depth++) {
      if (types.isProxy(p)) return 'Object';
      const c = gopd(p, 'constructor');
      if (c && typeof c.value === 'function') {
        const name = own(c.value as object, 'name');
        if (name && typeof name.value === 'string' && name.value !== '') return cut(name.value, o.maxNestedChars);
      }
      p = protoOf(p) as object | null;
    }
    return 'Object';
  };

  const kindOf = (v: object): string => {
    if (types.isProxy(v)) return 'proxy';
    if (Array.isArray(v)) return 'array';
    // util.types.isTypedArray (and on Node 24 isDataView) is JS on primordials that V8 counts as a side
    // effect: isView is a builtin, and the TypedArray length getter throws a plain TypeError on a DataView.
    if (ArrayBuffer.isView(v)) {
      try {
        typedLength.call(v);
        return 'typedarray';
      } catch {
        return 'dataview';
      }
    }
    if (types.isMap(v)) return 'map';
    if (types.isSet(v)) return 'set';
    if (types.isWeakMap(v)) return 'weakmap';
    if (types.isWeakSet(v)) return 'weakset';
    if (types.isDate(v)) return 'date';
    if (types.isRegExp(v)) return 'regexp';
    if (types.isNativeError(v)) return 'error';
    if (types.isPromise(v)) return 'promise';
    if (types.isArrayBuffer(v)) return 'arraybuffer';
    return 'object';
  };

  /** Kind, description and size of an object, without reading its entries. */
  const objectHead = (v: object, max: number): RawNested => {
    const t = kindOf(v);
    switch (t) {
      case 'proxy': return { t, d: 'Proxy' };
      case 'array': {
        const len = (gopd(v, 'length') as PropertyDescriptor).value as number;
        return { t, d: `${className(v)}(${len})`, n: len };
      }
      case 'typedarray': {
        const len = typedLength.call(v);
        return { t, d: `${className(v)}(${len})`, n: len };
      }
      case 'map': { const n = mapSize.call(v); return { t, d: `${className(v)}(${n})`, n }; }
      case 'set': { const n = setSize.call(v); return { t, d: `${className(v)}(${n})`, n }; }
      case 'arraybuffer': { const n = bufferLength.call(v); return { t, d: `ArrayBuffer(${n})`, n }; }
      case 'date': {
        let d = 'Invalid Date';
        try { d = dateIso.call(v); } catch { /* an invalid date: its description says so */ }
        return { t, d };
      }
      // V8 refuses reading a RegExp's `source` or `flags` under throwOnSideEffect (and one refusal fails the
      // whole call): the kind only.
      case 'regexp': return { t, d: className(v) };
      case 'error': {
        const m = own(v, 'message');
        const msg = m && typeof m.value === 'string' ? `: ${m.value}` : '';
        return { t, d: cut(`${className(v)}${msg}`, max) };
      }
      default: return { t, d: className(v) };
    }
  };

  const nested = (v: unknown): RawNested => {
    switch (typeof v) {
      case 'string': return { t: 'string', d: cut(v, o.maxNestedChars), n: v.length };
      case 'number': return { t: 'number', d: Object.is(v, -0) ? '-0' : String(v) };
      case 'bigint': return { t: 'bigint', d: `${v}n` };
      case 'boolean': return { t: 'boolean', d: String(v) };
      case 'undefined': return { t: 'undefined', d: 'undefined' };
      case 'symbol': return { t: 'symbol', d: cut(symbolString.call(v), o.maxNestedChars) };
      case 'function': return { t: 'function', d: 'function' };
      default:
        if (v === null) return { t: 'null', d: 'null' };
        try {
          return objectHead(v as object, o.maxNestedChars);
        } catch {
          return { t: 'object', d: 'Object' };
        }
    }
  };

  const keyOf = (k: unknown): string => {
    const n = nested(k);
    return cut(n.t === 'string' ? JSON.stringify(n.d) : n.d, o.maxKeyChars);
  };

  /** The first maxEntries entries of an object whose head is `head`. */
  const entries = (v: object, head: RawNested, out: RawValue): void => {
    const p: Array<[string, RawNested]> = [];
    const max = o.maxEntries;
    switch (head.t) {
      case 'proxy': case 'dataview': case 'weakmap': case 'weakset': case 'promise': case 'date': case 'regexp': case 'arraybuffer':
        return;
      case 'array':
      case 'typedarray': {
        const len = head.n ?? 0;
        for (let i = 0; i < len && i < max; i++) {
          if (head.t === 'typedarray') { p.push([String(i), nested((v as Record<number, unknown>)[i])]); continue; }
          const d = gopd(v, i);
          if (d) p.push([String(i), 'value' in d ? nested(d.value) : { t: 'accessor', d: 'accessor' }]);
        }
        out.more = len > max;
        break;
      }
      case 'map': {
        const it = mapEntries.call(v as Map<unknown, unknown>);
        for (let r = it.next(); !r.done && p.length < max; r = it.next()) p.push([keyOf(r.value[0]), nested(r.value[1])]);
        out.more = (head.n ?? 0) > p.length;
        break;
      }
      case 'set': {
        const it = setValues.call(v as Set<unknown>);
        for (let r = it.next(); !r.done && p.length < max; r = it.next()) p.push([String(p.length), nested(r.value)]);
        out.more = (head.n ?? 0) > p.length;
        break;
      }
      default: {
        // Own enumerable string keys, as an object literal shows them. Counting them is O(keys): the one
        // size no builtin knows in O(1) (50 k keys: a few ms).
        const keys = Object.keys(v);
        out.n = keys.length;
        for (let i = 0; i < keys.length && i < max; i++) {
          const k = keys[i] as string;
          const d = gopd(v, k);
          if (d) p.push([cut(k, o.maxKeyChars), 'value' in d ? nested(d.value) : { t: 'accessor', d: 'accessor' }]);
        }
        out.more = keys.length > max;
      }
    }
    if (p.length > 0) out.p = p;
  };

  const value = (v: unknown): RawValue => {
    if (typeof v === 'string') return { t: 'string', d: cut(v, o.maxChars), n: v.length };
    if (typeof v === 'function') {
      let src = 'function';
      try { src = fnToString.call(v); } catch { /* a revoked Proxy of a function */ }
      const nl = src.indexOf('\n');
      return { t: 'function', d: cut(nl < 0 ? src : `${src.slice(0, nl)} …`, o.maxChars) };
    }
    if (typeof v !== 'object' || v === null) return nested(v);
    let head: RawNested;
    try {
      head = objectHead(v, o.maxChars);
    } catch (e) {
      return { t: 'object', d: 'Object', err: cut(String(e instanceof Error ? e.message : e), o.maxNestedChars) };
    }
    // Built field by field: V8 refuses object spread (CloneObject) under throwOnSideEffect.
    const out: RawValue = { t: head.t, d: head.d };
    if (head.n !== undefined) out.n = head.n;
    try {
      entries(v, head, out);
    } catch (e) {
      // V8 refused a side effect (an interceptor, a patched builtin), or an exotic object threw.
      out.err = cut(e instanceof Error ? e.message : 'unreadable', o.maxNestedChars);
    }
    return out;
  };

  const readOne = (scope: object, closure: boolean): ScopeRead => {
    const vars: Array<[string, RawValue]> = [];
    const unread: string[] = [];
    let more = false;
    for (const name of Object.getOwnPropertyNames(scope)) {
      if ((closure && o.closureSkips.includes(name)) || (o.only !== undefined && !o.only.includes(name))) continue;
      let d: Descriptor;
      try {
        d = gopd(scope, name);
      } catch {
        // Node 24: a `let`/`const` not initialised yet (below its line in a caller's frame) throws
        // "Cannot access 'x' from debugger". It has no value yet: not shown, as Node 20 shows it as undefined.
        continue;
      }
      if (!d || !('value' in d)) continue;
      const x: unknown = d.value;
      if (closure && typeof x === 'function') continue;
      if (vars.length + unread.length >= o.maxVars) { more = true; break; }
      if (Date.now() > o.deadline) { unread.push(cut(name, o.maxKeyChars)); continue; }
      let v = seen.get(x);
      if (v === undefined) {
        try {
          v = value(x);
        } catch (e) {
          v = { t: typeof x, d: typeof x, err: cut(e instanceof Error ? e.message : 'unreadable', o.maxNestedChars) };
        }
        if ((typeof x === 'object' && x !== null) || typeof x === 'function') seen.set(x, v);
      }
      vars.push([cut(name, o.maxKeyChars), v]);
    }
    return { vars, more, unread };
  };
  const out: ScopeRead[] = [];
  for (let i = 0; i < scopes.length; i++) out.push(readOne(scopes[i] as object, o.closure[i] === true));
  return out;
}
