/**
 * Rewrites README.md's configuration table from OPTIONS (src/config.ts), the table `--help` is
 * printed from: `npm run readme:options`. test/readme.test.ts fails until it has been run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { replaceOptionsTable } from './readme-table.ts';

const file = resolve(import.meta.dirname, '../README.md');
const before = readFileSync(file, 'utf8');
const after = replaceOptionsTable(before);
if (after === before) {
  process.stdout.write('README.md: the configuration table is up to date\n');
} else {
  writeFileSync(file, after);
  process.stdout.write('README.md: the configuration table was regenerated from OPTIONS\n');
}
