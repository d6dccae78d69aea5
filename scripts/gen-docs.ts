// Regenerates the README's settings table from the settings declaration (`npm run docs`).
// test/config.test.ts fails when the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleYaml, settingsMarkdown } from '../src/config/help';

const START = '<!-- settings:start -->\n';
const END = '<!-- settings:end -->';
const file = join(__dirname, '..', '..', 'README.md');
const text = readFileSync(file, 'utf8');
const a = text.indexOf(START);
const b = text.indexOf(END);
if (a < 0 || b < a) throw new Error(`README.md lacks the ${START.trim()} … ${END} markers`);
writeFileSync(file, text.slice(0, a + START.length) + settingsMarkdown() + text.slice(b));
writeFileSync(join(__dirname, '..', '..', 'config', 'superv.yaml'), exampleYaml());
process.stdout.write('README.md settings table and config/superv.yaml regenerated\n');
