/**
 * README.md tells the truth about the configuration and needs nothing outside the repository.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import fg from 'fast-glob';
import { afterAll, describe, expect, it } from 'vitest';
import { OPTIONS, optionsMarkdown } from '../src/config.ts';
import { currentOptionsTable, replaceOptionsTable } from '../scripts/readme-table.ts';
import { post, ROOT, startTestServer, type TestServer } from './helpers/server.ts';

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

describe("the tour's method files", () => {
  let server: TestServer | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await server?.close(0);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('serve what the README says they answer to its curl commands', async () => {
    // The two method files the tour writes, with math.sum beside them, in a folder inside this
    // package (so `import … from 'simpleapi'` resolves as it does in methods/).
    const blocks = [...readme.matchAll(/```ts\n(.*?)```/gs)].map((m) => m[1]!);
    const hello = blocks.find((b) => b.includes("'Greets someone'"))!;
    const many = blocks.find((b) => b.includes('defineMethod({'))!;
    expect(readme).toContain('`methods/greet/hello.ts`');
    expect(readme).toContain('`methods/greet/many.ts`');
    dir = mkdtempSync(join(ROOT, 'test/.tmp-readme-'));
    mkdirSync(join(dir, 'greet'), { recursive: true });
    mkdirSync(join(dir, 'math'));
    writeFileSync(join(dir, 'greet/hello.ts'), hello);
    writeFileSync(join(dir, 'greet/many.ts'), many);
    copyFileSync(resolve(ROOT, 'methods/math/sum.ts'), join(dir, 'math/sum.ts'));
    server = await startTestServer({ methodsDir: dir });

    // Each `curl … -d '<body>'` of the tour is followed by a `# <answer>` line.
    const curls = [...readme.matchAll(/curl -s localhost:8888\/ [^\n]*\\\n\s+-d '([^']*)'\n# ([^\n]*)\n/g)];
    expect(curls.length).toBeGreaterThanOrEqual(2);
    for (const [, body, answer] of curls) {
      const reply = await post(server.url, body!);
      expect(reply.status).toBe(200);
      expect(reply.text).toBe(answer);
    }
  });
});
