// SQL text helpers: what a statement does to the transaction, and bounded copies of text and values for
// the dump. Only txEffect() can run per statement, and only when the server did not tell us the
// transaction status itself (pg always does; mysql2 only in OK packets, not after a SELECT).

// Leading comments and whitespace, then the keyword. `ROLLBACK TO [SAVEPOINT]` keeps the transaction.
const TX_KEYWORD =
  /^(?:\s+|\/\*[\s\S]*?\*\/|--[^\n]*(?:\n|$))*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK(?!\s+(?:WORK\s+)?TO\b))\b/i;

/** 1 when the statement opens a transaction, -1 when it ends one, 0 otherwise. Anchored: O(prefix). */
export function txEffect(sql: string): -1 | 0 | 1 {
  const m = TX_KEYWORD.exec(sql);
  if (m === null) return 0;
  const k = (m[1] ?? '').charAt(0).toUpperCase();
  return k === 'B' || k === 'S' ? 1 : -1;
}

/** A shared character budget, so that one dump's SQL stays bounded whatever the connection count. */
export class TextBudget {
  constructor(public left: number) {}

  /**
   * At most `max` characters of `s` (fewer once the budget runs out), marked when cut. `fullLength`:
   * the length of the text `s` was already cut from.
   */
  clip(s: string, max: number, fullLength = s.length): string {
    const n = Math.max(80, Math.min(max, this.left));
    this.left -= Math.min(s.length, n);
    return s.length <= n && fullLength === s.length ? s : `${s.slice(0, n)}… [${fullLength} chars]`;
  }
}

/** One line, at most `max` characters: for sentences. */
export function oneLine(sql: string, max = 80): string {
  const s = sql.slice(0, max * 4).replace(/\s+/g, ' ').trim();
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

const MAX_VALUES = 20;
const MAX_VALUE_CHARS = 200;

function previewValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (typeof v) {
    case 'string':
      return v.length <= MAX_VALUE_CHARS ? v : `${v.slice(0, MAX_VALUE_CHARS)}… [${v.length} chars]`;
    case 'number':
    case 'boolean':
      return v;
    case 'bigint':
      return String(v);
    case 'object':
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
      if (ArrayBuffer.isView(v)) return `<${v.constructor.name} ${v.byteLength} bytes>`;
      try {
        const s = JSON.stringify(v) ?? String(v);
        return s.length <= MAX_VALUE_CHARS ? s : `${s.slice(0, MAX_VALUE_CHARS)}… [${s.length} chars]`;
      } catch {
        return `<${v.constructor?.name ?? 'object'}>`;
      }
    default:
      return `<${typeof v}>`;
  }
}

/** Bound parameters as JSON-safe previews: at most 20, each at most 200 characters. */
export function previewValues(values: unknown): unknown {
  if (Array.isArray(values)) {
    const out: unknown[] = values.slice(0, MAX_VALUES).map(previewValue);
    if (values.length > MAX_VALUES) out.push(`… ${values.length - MAX_VALUES} more`);
    return out;
  }
  if (typeof values === 'object' && values !== null) {
    // Named placeholders (mysql2 `namedPlaceholders`).
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(values).slice(0, MAX_VALUES)) out[k] = previewValue((values as Record<string, unknown>)[k]);
    return out;
  }
  return previewValue(values);
}
