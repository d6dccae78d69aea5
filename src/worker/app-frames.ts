// "Is this frame the app's own code?" — one answer for the two places that ask: the inspector capture
// (capture/capture.ts, the watchdog's stack) and the call sites of statements and outbound calls
// (instrument/callsite.ts). Both must agree, or a dump would mark a frame `app` in its stack and
// skip the same frame as a statement's call site.

import { resolve, sep } from 'node:path';

/** superv's own compiled code (dist/src): its frames are never the app's. */
export const OWN_DIR = resolve(__dirname, '..') + sep;

/**
 * node internals, node_modules and superv's own files are not the app; nor is code without a file
 * (eval). `ownPrefix`: superv's directory as the caller sees it (OWN_DIR here, the watchdog its own).
 */
export function isAppFile(file: string, ownPrefix?: string): boolean {
  if (file === '' || file.startsWith('node:')) return false;
  if (file.includes(`${sep}node_modules${sep}`) || file.includes('/node_modules/')) return false;
  return ownPrefix === undefined || !file.startsWith(ownPrefix);
}
