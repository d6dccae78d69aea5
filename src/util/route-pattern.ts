// Route patterns, as users write them in settings such as `slow_exempt`: a URL path where `*` matches
// within one segment and `**` matches across segments. `/events`, `/events/*`, `/stream/**`, `/*/ws`.
// The query string never takes part. Checked once at start (a bad one is a clear error), compiled once
// to a RegExp, and matched only off the per-request path (the watchdog, when a request gets old).

/** Why `pattern` is not a route pattern, or undefined when it is one. */
export function routePatternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'a route pattern must not be empty';
  if (!pattern.startsWith('/')) return `a route pattern starts with / (e.g. /${pattern.replace(/^\/*/, '')})`;
  if (/[\s?#]/.test(pattern)) return 'a route pattern is a path: no spaces, ? or #';
  if (/\*{3,}/.test(pattern)) return 'use * (within a segment) or ** (across segments), not ***';
  if (/[^/]\*\*|\*\*[^/]/.test(pattern)) return '** must be a whole segment, as in /stream/**';
  return undefined;
}

/** One RegExp for a list of valid patterns (check them with routePatternProblem first). */
export function compileRoutePatterns(patterns: readonly string[]): RegExp | undefined {
  if (patterns.length === 0) return undefined;
  const one = (p: string): string => p.split(/(\*\*|\*)/).map((part) => {
    if (part === '**') return '.*';
    if (part === '*') return '[^/]*';
    return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }).join('')
    // `/stream/**` also matches `/stream` itself.
    .replace(/\/\.\*$/, '(?:/.*)?');
  return new RegExp(`^(?:${patterns.map(one).join('|')})$`);
}

/** The path of a request target: the query and fragment cut off. */
export function pathOf(url: string): string {
  const q = url.search(/[?#]/);
  return q >= 0 ? url.slice(0, q) : url;
}
