/**
 * What `simpleapi --help`, `simpleapi help [command]` and `simpleapi --version` print. The option
 * list comes from OPTIONS (src/config.ts), the table README's configuration section is made from.
 */
import { readFileSync } from 'node:fs';
import { optionsHelp } from '../config.ts';

export interface CommandSpec {
  summary: string;
  /** The command's own flags; a trailing `?` marks a flag that takes no value. */
  flags: readonly string[];
}

/** Per command: how it is called, and what its own flags do. */
const DETAILS: Record<string, { usage: string; flags?: Record<string, string>; notes?: string }> = {
  serve: {
    usage: 'simpleapi [serve] [options]',
    flags: { watch: 'reload method files as they change; a broken file keeps its last good version' },
    notes: 'A bare `simpleapi` (or `npm start`) serves. Through npm, put flags after `--`: npm start -- --port=8889',
  },
  new: {
    usage: 'simpleapi new <a.b.c> [--public]',
    flags: { public: 'the method needs no session (auth = "public")' },
    notes: 'Writes <methods-dir>/a/b/c.ts and test/methods/a/b/c.test.ts; refuses to overwrite either.',
  },
  types: {
    usage: 'simpleapi types [--out=<file.ts>]',
    flags: { out: 'the file to write (default client-types.ts)' },
  },
  methods: { usage: 'simpleapi methods [--methods-dir=<dir>]' },
  call: {
    usage: "simpleapi call <method> ['<json params>' | -] [--url=<url> | --unix=<socket> | --port=<n>] [--user=<id> [--password-stdin]]",
    flags: {
      url: 'the endpoint to call (default http://<host>:<port><path> of the configuration)',
      unix: 'call over this Unix domain socket instead of TCP',
      user: 'log in as this user_id first, then sign the call with the new session',
      'password-stdin': 'read the password for --user from standard input (or set SIMPLEAPI_PASSWORD, or answer the prompt on a terminal)',
      password: 'the password for --user on the command line: it shows in ps, so a warning is printed',
    },
    notes:
      'Each call logs in afresh: session state (prefs.*) lives in that one session, so a second call starts from {}. ' +
      'With - the params are read from standard input: params holding a password (account.create, account.password) stay out of ps and shell history; given on the command line they are warned about.',
  },
  createuser: {
    usage: 'simpleapi createuser <user_id> --db-url=<mongodb://…>',
    notes: 'Needs a database: on the embedded store the accounts live inside the running server; use account.create there.',
  },
  help: { usage: 'simpleapi help [command]' },
  version: { usage: 'simpleapi --version' },
};

function flagLines(name: string, spec: CommandSpec): string[] {
  const docs = DETAILS[name]?.flags ?? {};
  return spec.flags.map((f) => {
    const flag = f.endsWith('?') ? `--${f.slice(0, -1)}` : `--${f}=<value>`;
    return `  ${flag.padEnd(20)} ${docs[f.replace(/\?$/, '')] ?? ''}`.trimEnd();
  });
}

/** The whole help: every command, then every option. */
export function usage(commands: Record<string, CommandSpec>): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`);
  return [
    'Usage: simpleapi <command> [options]     (no command: serve)',
    '',
    'Commands:',
    ...lines,
    `  ${'help'.padEnd(11)} this text, or one command's: simpleapi help <command>`,
    `  ${'version'.padEnd(11)} print the version (also --version)`,
    '',
    'Options (defaults < server.conf.json < SIMPLEAPI_* environment < flags; --name=value or --name value):',
    optionsHelp(),
    '  --version\n      Print the version and exit',
    '',
    'call takes also: --url=<http://host:port/> or --unix=<socket path>, --user=<user_id> with the password from --password-stdin, SIMPLEAPI_PASSWORD or a prompt (--password=<password> works but shows in ps)',
  ].join('\n');
}

/** One command's help: its usage line, what it does, its own flags. */
export function commandUsage(name: string, spec: CommandSpec): string {
  const details = DETAILS[name];
  const own = flagLines(name, spec);
  return [
    `Usage: ${details?.usage ?? `simpleapi ${name} [options]`}`,
    '',
    spec.summary,
    ...(details?.notes === undefined ? [] : ['', details.notes]),
    ...(own.length === 0 ? [] : ['', 'Flags:', ...own]),
    '',
    name === 'serve' ? `Options:\n${optionsHelp()}` : "It also takes the configuration options (--config, --methods-dir, --port, …): see 'simpleapi help serve'.",
  ].join('\n');
}

/** The version in package.json. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
