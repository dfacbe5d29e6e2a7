/** `simpleapi call <method> [json-params]`: one call from the command line, signed when a user is given. */
import { SimpleApiClient, SimpleApiError } from './client/index.ts';
import type { Config } from './config.ts';

export async function callCommand(positional: string[], flags: Record<string, string>, config: Config): Promise<number> {
  const [method, rawParams, ...extra] = positional;
  if (method === undefined || extra.length > 0) {
    process.stderr.write('usage: simpleapi call <method> [json-params] [--url=URL | --unix=PATH] [--user=ID --password=PW]\n');
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
  if ((flags.user === undefined) !== (flags.password === undefined)) {
    process.stderr.write('simpleapi: --user and --password go together\n');
    return 2;
  }
  const url = flags.url ?? (flags.unix === undefined ? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}${config.path}` : undefined);
  const client = new SimpleApiClient({ url, socketPath: flags.unix, path: config.path, scheme: config.hmac.scheme });
  try {
    if (flags.user !== undefined) await client.login(flags.user, flags.password!);
    // A background method is waited for, with its progress on stderr (stdout keeps only the result).
    const result = await client.call(method, params, {
      wait: true,
      // §6 retries: the answer is the kept outcome of an earlier attempt, the method ran once.
      onAnswer: (a) => void (a.retried && process.stderr.write(`simpleapi: answered from the first attempt (retried, ${a.attempts} attempts; the method ran once)\n`)),
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
