// Small read-time helpers shared by the `db` and `outbound` providers: the owning request as the dump
// shows it, and the words of the summary sentences.

import { requestById, unattributedReason } from '../context';
import { humanDuration } from '../../util/duration';

/** The request that issued some work. method and url are absent once the request has finished. */
export interface RequestRef {
  id: number;
  method?: string;
  url?: string;
}

export function requestRef(id: number | undefined): RequestRef | undefined {
  if (id === undefined) return undefined;
  let info;
  try {
    info = requestById(id);
  } catch {
    info = undefined;
  }
  return info === undefined ? { id } : { id, method: info.method, url: info.url };
}

/**
 * "GET /transfer (request 7)". The query string is left out on purpose: sentences are free text, and
 * the redactor treats free text more loosely than the `url` field it can parse as a URL.
 */
export function requestLabel(ref: RequestRef | undefined): string {
  if (ref === undefined) {
    const why = unattributedReason();
    return why === undefined ? 'work outside any request' : `request unknown (${why})`;
  }
  if (ref.method === undefined || ref.url === undefined) return `request ${ref.id} (finished)`;
  const q = ref.url.indexOf('?');
  return `${ref.method} ${q < 0 ? ref.url : ref.url.slice(0, q)} (request ${ref.id})`;
}

export const seconds = (ms: number): string => humanDuration(Math.max(0, ms));
