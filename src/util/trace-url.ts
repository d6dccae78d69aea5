// The `trace_url` setting: a link template into the team's tracing system, `{trace_id}` (and optionally
// `{span_id}`) replaced by a request's ids. Checked at start; filled in by the readers.

/** Why a template cannot be used, or undefined when it can. */
export function traceUrlProblem(template: string): string | undefined {
  if (!/^https?:\/\/[^\s]+$/i.test(template)) return 'expected an http:// or https:// URL without spaces';
  if (!template.includes('{trace_id}')) return 'expected {trace_id} in it, e.g. https://traces.example/trace/{trace_id}';
  return undefined;
}

/**
 * The link for these ids, or undefined without a usable template. The ids are hex by the time they get
 * here (the loader drops anything else), and are URL-encoded all the same: the template is the only markup.
 */
export function traceLink(template: string | undefined, traceId: string, spanId?: string): string | undefined {
  if (!template || traceUrlProblem(template) !== undefined) return undefined;
  return template.split('{trace_id}').join(encodeURIComponent(traceId)).split('{span_id}').join(encodeURIComponent(spanId ?? ''));
}
