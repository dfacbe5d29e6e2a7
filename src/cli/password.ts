/**
 * Where `simpleapi call` takes a password from, without putting it where others can read it: the
 * command line shows in `ps` and shell history, so it is the last resort and warned about.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

export interface PasswordSources {
  /** `--password=…` as given, if it was. */
  flag: string | undefined;
  /** `--password-stdin`: the first line of standard input. */
  stdin: boolean;
  env: NodeJS.ProcessEnv;
  input?: NodeJS.ReadStream;
  warn?: (text: string) => void;
}

export const ARGV_WARNING =
  'simpleapi: warning: a password given with --password is visible to other users (ps, shell history); use --password-stdin, SIMPLEAPI_PASSWORD or the prompt\n';

/** The first line of a stream, without its line ending. */
async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += String(chunk);
    const end = text.search(/\r?\n/);
    if (end !== -1) return text.slice(0, end);
  }
  return text;
}

/** Asks on the terminal with echo off. */
function prompt(input: NodeJS.ReadStream, question: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

/**
 * The password from --password-stdin, SIMPLEAPI_PASSWORD, a prompt (on a terminal), or --password
 * (with a warning); null when there is none to be had.
 *
 * @example const pw = await readPassword({ flag: flags.password, stdin: flags['password-stdin'] === 'true', env: process.env })
 */
export async function readPassword(sources: PasswordSources): Promise<string | null> {
  const input = sources.input ?? process.stdin;
  const warn = sources.warn ?? ((text) => process.stderr.write(text));
  if (sources.stdin) return firstLine(input);
  if (sources.flag !== undefined) {
    warn(ARGV_WARNING);
    return sources.flag;
  }
  const fromEnv = sources.env.SIMPLEAPI_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (input.isTTY === true) return prompt(input, 'password: ');
  return null;
}
