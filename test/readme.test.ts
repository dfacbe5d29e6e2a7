/**
 * README.md tells the truth about the configuration and needs nothing outside the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import fg from 'fast-glob';
import { describe, expect, it } from 'vitest';
import { OPTIONS, optionsMarkdown } from '../src/config.ts';
import { currentOptionsTable, replaceOptionsTable } from '../scripts/readme-table.ts';
import { ROOT } from './helpers/server.ts';

const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');

describe("README's configuration table", () => {
  it('is the one generated from OPTIONS (run `npm run readme:options` when this fails)', () => {
    expect(currentOptionsTable(readme)).toBe(optionsMarkdown());
  });

  it('has a row for every option, --docs included', () => {
    const table = optionsMarkdown();
    for (const option of OPTIONS) expect(table).toContain(`| \`--${option.flag}\``);
    expect(table).toContain('| `--docs`, `--no-docs` | `docs` |');
  });

  it('is regenerated in place, leaving the rest of the README alone', () => {
    const stale = readme.replace('| `--port` | `port` |', '| `--port` | `prot` |');
    expect(stale).not.toBe(readme);
    expect(replaceOptionsTable(stale)).toBe(replaceOptionsTable(readme));
    expect(replaceOptionsTable(readme)).toBe(readme);
  });
});

describe('a clone needs nothing beside it', () => {
  it('no file of src/, test/, methods/, docs/ or README.md refers to ../shared (but the optional vector comparison)', async () => {
    const files = await fg(['src/**/*', 'test/**/*', 'methods/**/*', 'docs/**/*', 'scripts/**/*', 'README.md'], { cwd: ROOT, ignore: ['**/node_modules/**'] });
    const offending = files.filter((file) => {
      const text = readFileSync(resolve(ROOT, file), 'utf8');
      const mentions = text.includes('../shared') || text.includes('shared/protocol');
      return mentions && file !== 'test/signing.test.ts' && file !== 'test/readme.test.ts';
    });
    expect(offending).toEqual([]);
  });

  it("every relative link of README.md and docs/ names a file of the repository", () => {
    for (const file of ['README.md', 'docs/protocol.md']) {
      const text = readFileSync(resolve(ROOT, file), 'utf8');
      const links = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
      expect(links.length).toBeGreaterThan(0);
      for (const link of links) expect(existsSync(resolve(ROOT, dirname(file), link)), `${file} links to ${link}`).toBe(true);
    }
  });
});
