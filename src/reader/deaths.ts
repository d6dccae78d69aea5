// Worker deaths grouped by crash signature, for `superv dumps` and `superv report`: a crash loop of a
// thousand identical deaths is one line ("TypeError: Cannot read … at chargeCustomer app.js:6 — 37 deaths,
// routes /charge"), not a thousand files. A crash dump stands for itself plus the identical crashes the
// master counted but did not write before it (`crash.suppressed`), so the counts survive the rate limit.

import type { CrashKind, Dump } from '../dump/types';
import { dumpRoute } from './facts';
import { clean, columns, localTime, type Style } from './format';
import type { LoadedDump } from './load';

export interface DeathGroup {
  fingerprint: string;
  kind: CrashKind;
  /** Deaths, counted ones included. */
  deaths: number;
  /** Dump files of this group. */
  files: string[];
  routes: string[];
  first: number;
  last: number;
}

/** Groups the crash dumps of `ds` by signature, most deaths first. */
export function groupDeaths(ds: readonly LoadedDump[]): DeathGroup[] {
  const groups = new Map<string, DeathGroup>();
  for (const d of ds) {
    const c = d.dump.crash;
    if (d.dump.reason !== 'crash' || !c) continue;
    const t = Date.parse(d.dump.time);
    let g = groups.get(c.fingerprint);
    if (!g) groups.set(c.fingerprint, (g = { fingerprint: c.fingerprint, kind: c.kind, deaths: 0, files: [], routes: [], first: t, last: t }));
    g.deaths += 1 + (c.suppressed ?? 0);
    g.files.push(d.path);
    const route = routeOf(d.dump);
    if (route && !g.routes.includes(route)) g.routes.push(route);
    g.first = Math.min(g.first, t);
    g.last = Math.max(g.last, t);
  }
  return [...groups.values()].sort((a, b) => b.deaths - a.deaths || b.last - a.last);
}

function routeOf(d: Dump): string | undefined {
  const r = dumpRoute(d);
  return r && d.request ? `${d.request.method} ${r}` : r;
}

/** One line per signature: what died, how often, on which routes. */
export function renderDeathGroups(groups: readonly DeathGroup[], s: Style): string {
  if (groups.length === 0) return '';
  const rows = [['DEATHS', 'KIND', 'SIGNATURE', 'ROUTES', 'LAST', 'DUMPS'].map((x) => s.dim(x))];
  for (const g of groups) {
    rows.push([s.red(String(g.deaths)), g.kind, s.bold(clean(g.fingerprint, 140)), clean(g.routes.slice(0, 3).join(', ') || '-', 80) +
      (g.routes.length > 3 ? ` +${g.routes.length - 3}` : ''), localTime(g.last), String(g.files.length)]);
  }
  return `${s.bold('Worker deaths by signature')}\n${columns(rows, new Set([0, 5]))}`;
}
