// The worker's busy database sessions, for the heartbeat: which server session (pg backend pid, MySQL
// connection id) runs a statement or holds a transaction open, for which request. With it the master can
// name the holder of a lock another worker waits on (src/master/lock-holders.ts) without any message per
// query: it reads ids the drivers already have, once per heartbeat, and only of connections that are
// busy (a statement pending or a transaction open), at most MAX_SESSIONS of them.

import type { DbKind } from '../../dump/locks';
import { redactUrl } from '../../dump/redact';
import type { DbSession } from '../../protocol';
import { requestById } from '../context';
import { lockSettings } from './lock-lookup';
import { lockDrivers } from './lock-side';
import { registry } from './state';

const MAX_SESSIONS = 50;

/** Undefined when there is nothing to say, or when the lock look-up is off (the master only needs these for it). */
export function dbSessions(): DbSession[] | undefined {
  if (!lockSettings.enabled || registry.connections.size === 0) return undefined;
  const out: DbSession[] = [];
  for (const c of registry.connections) {
    if (out.length >= MAX_SESSIONS) break;
    try {
      const kind: DbKind | undefined = lockDrivers[c.adapter.driver]?.kind;
      const serverId = c.adapter.serverId(c.client);
      if (kind === undefined || serverId === undefined) continue;
      const pending = c.txSince === 0 ? c.adapter.pending(c.client, 1).items[0]?.stmt : undefined;
      if (c.txSince === 0 && pending === undefined) continue;
      const s: DbSession = { kind, serverId };
      const requestId = c.txOpener?.requestId ?? pending?.requestId;
      if (requestId !== undefined) {
        s.requestId = requestId;
        const info = requestById(requestId);
        if (info !== undefined) {
          s.method = info.method;
          s.url = redactUrl(info.url);
          s.startedAt = info.startedAt;
        }
      }
      if (c.txSince !== 0) s.txSince = c.txSince;
      out.push(s);
    } catch {
      // A connection whose internals surprise us is left out of this heartbeat.
    }
  }
  return out.length > 0 ? out : undefined;
}
