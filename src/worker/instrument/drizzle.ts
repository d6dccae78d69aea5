// drizzle-orm: its queries are thenables (QueryPromise), awaited through a then() V8 calls from a job,
// so neither the stack nor the await chain under the driver's query() leads back to the app
// (origin.ts). Its CommonJS query-promise.cjs is compiled with one more instance field, which marks the
// stack where each query object is made, and QueryPromise#then runs under that mark.
// Only the CommonJS build: an ES-module app's drizzle queries get the driver's own call site (the
// library frame, marked as such).

import type { ModuleTarget } from './hook';
import { enableOrigins, kOrigin, MARK_ORIGIN, runWithOrigin } from './origin';
import { isObject, wrapMethod, type Method } from './patch';

const CLASS_HEAD = /\bclass QueryPromise\s*\{/;
const FIELD = `[Symbol.for(${JSON.stringify(kOrigin.description)})] = globalThis[Symbol.for(${JSON.stringify(MARK_ORIGIN.description)})]?.();`;

function transform(source: string): string {
  if (!CLASS_HEAD.test(source)) throw new Error('no `class QueryPromise {` in drizzle-orm\'s query-promise.cjs');
  enableOrigins();
  return source.replace(CLASS_HEAD, (head) => `${head}\n  ${FIELD}`);
}

function patch(exports: unknown): void {
  const proto = isObject(exports) ? (exports.QueryPromise as { prototype?: unknown } | undefined)?.prototype : undefined;
  if (!isObject(proto) || typeof proto.then !== 'function') throw new Error('drizzle-orm QueryPromise has no prototype.then');
  wrapMethod(proto, 'then', (original: Method) => function supervDrizzleThen(this: unknown): unknown {
    const origin = isObject(this) ? this[kOrigin] : undefined;
    if (!isObject(origin)) return Reflect.apply(original, this, arguments) as unknown;
    const args = arguments;
    return runWithOrigin(origin, () => Reflect.apply(original, this, args) as unknown);
  });
}

export const drizzleTargets: ModuleTarget[] = [
  { driver: 'drizzle-orm', suffix: '/drizzle-orm/query-promise.cjs', transform, patch, loadOnly: true },
];
