/** Where README.md's generated configuration table sits, and how it is put there. */
import { optionsMarkdown } from '../src/config.ts';

export const START = '<!-- options:start (generated from OPTIONS in src/config.ts: run `npm run readme:options`, do not edit by hand) -->';
export const END = '<!-- options:end -->';

/** The table now between the markers of `readme`; throws when the markers are missing. */
export function currentOptionsTable(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start === -1 || end < start) throw new Error(`README.md has no ${START} … ${END} block`);
  return readme.slice(start + START.length, end).trim();
}

/** `readme` with the block between the markers replaced by the table generated from OPTIONS. */
export function replaceOptionsTable(readme: string): string {
  currentOptionsTable(readme);
  const start = readme.indexOf(START) + START.length;
  const end = readme.indexOf(END);
  return `${readme.slice(0, start)}\n${optionsMarkdown()}\n${readme.slice(end)}`;
}
