// A script URL as V8 reports it (file:///app/x.js) turned into the path a reader knows; other URLs as is.

import { fileURLToPath } from 'node:url';

export function urlToPath(url: string): string {
  if (!url.startsWith('file:')) return url;
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}
