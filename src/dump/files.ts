// Dump files on disk: their names (which sort by incident time) and how a directory of them is listed.
// The master writes them (src/master/dump-write.ts), the reader lists and loads them (src/reader/load.ts).

import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Dump } from './types';

/** `2026-11-28T15-30-01.123Z-<name>-w<id>-<pid>-<reason>.json`: sorts by incident time under `ls`. */
export const DUMP_NAME = /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z-.+-w\d+-\d+-[a-z]+\.json$/;
function safePart(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64) || '_';
}

export function dumpFileName(dump: Dump): string {
  const t = new Date(dump.time);
  const when = (Number.isNaN(t.getTime()) ? new Date() : t).toISOString().replace(/:/g, '-');
  const reason = /^[a-z]+$/.test(dump.reason) ? dump.reason : 'unknown';
  return `${when}-${safePart(dump.supervisor.name)}-w${dump.worker.id}-${dump.worker.pid}-${reason}.json`;
}

export interface DumpFile {
  name: string;
  path: string;
}

/** The dumps in `dir`, oldest first (newest last), by the time in their names. */
export async function listDumps(dir: string): Promise<DumpFile[]> {
  const names = await fs.readdir(dir);
  return names
    .filter((n) => DUMP_NAME.test(n))
    .sort()
    .map((name) => ({ name, path: join(dir, name) }));
}
