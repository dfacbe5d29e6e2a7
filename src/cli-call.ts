/** `simpleapi call <method> [json-params]`: one call from the command line, signed when a user is given. */
import { SimpleApiClient, SimpleApiError } from './client/index.ts';
import type { Config } from './config.ts';
import { readPassword } from './cli-password.ts';

export async function callCommand(positional: string[], flags: Record<string, string>, config: Config): Promise<number> {
  const [method, rawParams, ...extra] = positional;
  if (method === undefined || extra.length > 0) {
    process.stderr.write('usage: simpleapi call <method> [json-params] [--url=URL | --unix=PATH] [--user=ID [--password-stdin]]\n');
    return 2;
  }
  let params: unknown = {};
  if (rawParams !== undefined) {
    try {
      params = JSON.parse(rawParams);
    } catch (err) {
      process.stderr.write(`simpleapi: the params are not valid JSON: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const password = flags.user === undefined ? null : await readPassword({ flag: flags.password, stdin: flags['password-stdin'] === 'true', env: process.env });
  if (flags.user === undefined ? flags.password !== undefined || flags['password-stdin'] !== undefined : password === null) {
    process.stderr.write('simpleapi: --user needs a password: --password-stdin, SIMPLEAPI_PASSWORD, or the prompt on a terminal\n');
    return 2;
  }
  const url = flags.url ?? (flags.unix === undefined ? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}${config.path}` : undefined);
  const client = new SimpleApiClient({ url, socketPath: flags.unix, path: config.path, scheme: config.hmac.scheme });
  try {
    if (flags.user !== undefined) await client.login(flags.user, password!);
    // A background method is waited for, with its progress on stderr (stdout keeps only the result).
    const result = await client.call(method, params, {
      wait: true,
      onProgress: (job) => {
        const percent = job.progress === null ? '' : ` ${Math.round(job.progress.fraction * 100)}%`;
        process.stderr.write(`job ${job.job_id}: ${job.state}${percent}${job.progress?.note ? ` ${job.progress.note}` : ''}\n`);
      },
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof SimpleApiError) {
      const error = { code: err.code, message: err.message, type: err.type, ...(err.details === undefined ? {} : { details: err.details }) };
      process.stderr.write(`${JSON.stringify({ error }, null, 2)}\n`);
      return 1;
    }
    process.stderr.write(`simpleapi: ${(err as Error).message}\n`);
    return 1;
  }
}
