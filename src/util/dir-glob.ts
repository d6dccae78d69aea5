// Expands a directory pattern such as `/srv/hosts/*/superv-dumps` or `dumps-web[12]`, for `--dir` given in
// quotes (a shell expands an unquoted one itself). `*` and `?` match within one path segment and `[...]` is
// a character class, as in sh; no `**`. Only directories are returned, sorted. Node 20 has no fs.glob.

import { promises as fs } from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';

export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

function segmentRegExp(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      const body = seg.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
      re += `[${body}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The directories `pattern` names (resolved against `cwd`), sorted; none when nothing matches. */
export async function expandDirGlob(pattern: string, cwd: string): Promise<string[]> {
  const abs = isAbsolute(pattern) ? pattern : resolve(cwd, pattern);
  const segs = abs.split(sep).filter((s) => s !== '');
  let bases: string[] = [sep];
  for (const seg of segs) {
    const next: string[] = [];
    for (const base of bases) {
      if (!isGlob(seg)) {
        next.push(join(base, seg));
        continue;
      }
      const re = segmentRegExp(seg);
      const entries = await fs.readdir(base, { withFileTypes: true }).catch(() => []);
      // A leading dot is matched only by a pattern that starts with one, as in sh.
      for (const e of entries) if (re.test(e.name) && (seg.startsWith('.') || !e.name.startsWith('.'))) next.push(join(base, e.name));
    }
    bases = next;
  }
  const dirs: string[] = [];
  for (const d of bases) if (await fs.stat(d).then((s) => s.isDirectory(), () => false)) dirs.push(d);
  return dirs.sort();
}
