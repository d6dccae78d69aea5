// DB and outbound instrumentation, installed once per worker before the app loads. It makes dumps say
// which statements and outbound calls were pending, for which request, issued where, and which
// transactions were open: the `db` and `outbound` state providers.
//
//   hook.ts            sees the drivers' CommonJS files load (require and import alike)
//   esm-redirect.ts    resolves ESM imports of postgres.js and mariadb to their CommonJS builds
//   pg.ts, mysql2.ts   patch the drivers' prototypes (patch.ts: once, where the method is defined)
//   postgres.ts        postgres.js: its Query class and Connection factory
//   mariadb.ts         mariadb: its Connection and Pool classes, handed over as its bundle defines them
//   drizzle.ts, origin.ts  query builders whose queries are thenables: where the query was made
//   state.ts           per-statement, per-connection and per-pool bookkeeping (bounded)
//   db-state.ts        the `db` provider, read at dump time (sql.ts, describe.ts: its words)
//   lock-lookup.ts     at dump time, asks the server who blocks a waiting statement (lock-side.ts:
//                      side connections per driver; lock-postgres.ts, lock-mysql.ts: the catalogs)
//   outbound.ts        http/https/fetch tracking and the `outbound` provider
//   callsite.ts        the app's call site: cached per SQL text, or captured cheaply and resolved late
//   settings.ts        the options, read by the wrappers

import { enableRequestContext } from '../context';
import { registerStateProvider } from '../providers';
import { dbState } from './db-state';
import { drizzleTargets } from './drizzle';
import { redirectEsm } from './esm-redirect';
import { watchModules } from './hook';
import { mariadbRedirects, mariadbTargets } from './mariadb';
import { mysql2Targets } from './mysql2';
import { installLockLookup } from './lock-lookup';
import { installOutbound, outboundState } from './outbound';
import { pgTargets } from './pg';
import { postgresRedirects, postgresTargets } from './postgres';
import { configure, type InstrumentationOptions } from './settings';

export type { InstrumentationOptions } from './settings';
export type { DbState, ConnectionJson, PoolJson, StatementJson, TransactionJson } from './db-state';
export type { OutboundState, OutboundJson } from './outbound';
export type { CallSite } from './callsite';

// On a global symbol like the provider registry: a second copy of superv in the same process (the app
// depending on it too) must not patch the drivers twice or replace the providers with empty ones.
const INSTALLED = Symbol.for('superv.instrumentation');

/**
 * Arranges that pg (Client, Pool), postgres.js, mysql2 and mariadb (callback and promise APIs, pools) are instrumented when the
 * app loads them, by `require` or by `import`, and that outbound http/https/fetch calls are tracked.
 * Call it before the app loads. A second call only applies the new options.
 */
export function installInstrumentation(opts: InstrumentationOptions): void {
  configure(opts);
  installLockLookup(opts.lockLookup !== false);
  const g = globalThis as { [INSTALLED]?: true };
  if (g[INSTALLED] === true) return;
  g[INSTALLED] = true;
  // Tying a statement to its request across awaits needs AsyncLocalStorage, which costs every request
  // (context.ts): turn it on only once a driver is actually loaded.
  watchModules([...pgTargets, ...mysql2Targets, ...postgresTargets, ...mariadbTargets, ...drizzleTargets], () => enableRequestContext());
  redirectEsm([...postgresRedirects, ...mariadbRedirects], opts.esmApp === true);
  installOutbound();
  registerStateProvider('db', dbState);
  registerStateProvider('outbound', outboundState);
}
