// Replacing one method of a driver's class, once, where the class defines it. Drivers are patched on
// their prototypes (not per instance) so a connection created anywhere, by the app or by a pool, is
// covered, and so a subclass loaded later (mysql2's Connection over BaseConnection) finds the method
// already wrapped instead of wrapping it twice.

/** The method a wrapper replaced, kept on the wrapper: for benchmarks and for whoever debugs this. */
export const ORIGINAL = Symbol.for('superv.instrument.original');

export type Method = (this: unknown, ...args: unknown[]) => unknown;

export function wrapMethod(target: object, name: string, wrap: (original: Method) => Method): boolean {
  let owner: object | null = target;
  while (owner !== null && !Object.prototype.hasOwnProperty.call(owner, name)) owner = Object.getPrototypeOf(owner) as object | null;
  if (owner === null) return false;
  const desc = Object.getOwnPropertyDescriptor(owner, name);
  const original: unknown = desc?.value;
  if (desc === undefined || typeof original !== 'function') return false;
  if ((original as { [ORIGINAL]?: unknown })[ORIGINAL] !== undefined) return false;
  const wrapped = wrap(original as Method);
  Object.defineProperty(wrapped, ORIGINAL, { value: original });
  // Stack traces and `fn.length` checks keep seeing the driver's own name and arity.
  Object.defineProperty(wrapped, 'name', { value: (original as Method).name, configurable: true });
  Object.defineProperty(wrapped, 'length', { value: (original as Method).length, configurable: true });
  Object.defineProperty(owner, name, { ...desc, value: wrapped });
  return true;
}

/** The unwrapped method, or the method itself when it is not ours. */
export function originalOf(fn: unknown): unknown {
  return typeof fn === 'function' ? ((fn as { [ORIGINAL]?: unknown })[ORIGINAL] ?? fn) : fn;
}

export function isObject(v: unknown): v is Record<PropertyKey, unknown> {
  return typeof v === 'object' && v !== null;
}
