// Where the bench finds superv and its fixtures. No side effects, so tests can import what builds on it
// (systems.ts, which re-exports these, makes a scratch dir when loaded).

import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..', '..');
export const SUPERV_CLI = join(REPO, 'dist', 'src', 'cli.js');
export const FIXTURES = join(REPO, 'bench', 'fixtures');
export const PM2_BIN = join(REPO, 'node_modules', 'pm2', 'bin', 'pm2');
