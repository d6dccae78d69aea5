// DB and outbound instrumentation, installed once per worker before the app loads. It makes dumps say
// which statements and outbound calls were pending, for which request, issued where, and which
// transactions were open: the `db` and `outbound` state providers.
//
//   hook.ts            sees the drivers' CommonJS files load (require and import alike)
//   pg.ts, mysql2.ts   patch the drivers' prototypes (patch.ts: once, where the method is defined)
//   state.ts           per-statement, per-connection and per-pool bookkeeping (bounded)
//   db-state.ts        the `db` provider, read at dump time (sql.ts, describe.ts: its words)
//   outbound.ts        http/https/fetch tracking and the `outbound` provider
//   callsite.ts        the app's call site: cached per SQL text, or captured cheaply and resolved late
//   settings.ts        the options, read by the wrappers

import { enableRequestContext } from '../context';
import { registerStateProvider } from '../providers';
import { dbState } from './db-state';
import { watchModules } from './hook';
import { mysql2Targets } from './mysql2';
import { installOutbound, outboundState } from './outbound';
import { pgTargets } from './pg';
import { configure, type InstrumentationOptions } from './settings';

export type { InstrumentationOptions } from './settings';
export type { DbState, ConnectionJson, PoolJson, StatementJson, TransactionJson } from './db-state';
export type { OutboundState, OutboundJson } from './outbound';
export type { CallSite } from './callsite';

// On a global symbol like the provider registry: a second copy of superv in the same process (the app
// depending on it too) must not patch the drivers twice or replace the providers with empty ones.
const INSTALLED = Symbol.for('superv.instrumentation');

/**
 * Arranges that pg (Client, Pool) and mysql2 (callback and promise APIs, pools) are instrumented when the
 * app loads them, by `require` or by `import`, and that outbound http/https/fetch calls are tracked.
 * Call it before the app loads. A second call only applies the new options.
 */
export function installInstrumentation(opts: InstrumentationOptions): void {
  configure(opts);
  const g = globalThis as { [INSTALLED]?: true };
  if (g[INSTALLED] === true) return;
  g[INSTALLED] = true;
  // Tying a statement to its request across awaits needs AsyncLocalStorage, which costs every request
  // (context.ts): turn it on only once a driver is actually loaded.
  watchModules([...pgTargets, ...mysql2Targets], () => enableRequestContext());
  installOutbound();
  registerStateProvider('db', dbState);
  registerStateProvider('outbound', outboundState);
}
