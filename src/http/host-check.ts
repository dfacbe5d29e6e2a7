/**
 * The Host check of a server bound to loopback, against DNS rebinding: a web page cannot reach
 * 127.0.0.1 under its own name, but a name it controls can be made to resolve there, and the
 * browser then sends that name as Host. So a loopback server answers only loopback names, and the
 * ones the operator lists (`--allowed-hosts`).
 */

/** True for a bind address that only this machine can reach. */
export function isLoopbackBind(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The name and port of a Host header (`[::1]:8888` gives `::1` and `8888`). */
function splitHost(header: string): { name: string; port: string } {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return { name: h.slice(1, end === -1 ? undefined : end), port: end === -1 ? '' : h.slice(end + 2) };
  }
  const colon = h.lastIndexOf(':');
  return colon === -1 || h.indexOf(':') !== colon ? { name: h, port: '' } : { name: h.slice(0, colon), port: h.slice(colon + 1) };
}

/** Decides whether a request's Host is answered; `describe` says what is, for the refusal. */
export interface HostCheck {
  allows(host: string | string[] | undefined): boolean;
  readonly describe: string;
}

/**
 * The check for a server bound to `bindHost`, or null when every Host is answered (not bound to
 * loopback, or `allowed` is `*`). `allowed` lists extra names, each `name` (any port) or `name:port`.
 *
 * @example hostCheck('127.0.0.1', 'dev.test:8888')?.allows('evil.example') // false
 */
export function hostCheck(bindHost: string, allowed: string): HostCheck | null {
  const extra = allowed.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  if (!isLoopbackBind(bindHost) || extra.includes('*')) return null;
  const names = new Set(['localhost', '127.0.0.1', '::1']);
  const exact = new Set<string>();
  for (const entry of extra) {
    const { name, port } = splitHost(entry);
    if (port === '') names.add(name);
    else exact.add(`${name}:${port}`);
  }
  // A server sees the same few Host values again and again: judge each once (a bounded memo).
  const judged = new Map<string, boolean>();
  return {
    allows(host) {
      // Browsers always send Host; a client that sends none is not a rebinding page.
      if (host === undefined) return true;
      if (typeof host !== 'string') return false;
      let verdict = judged.get(host);
      if (verdict === undefined) {
        const { name, port } = splitHost(host);
        verdict = names.has(name) || name.endsWith('.localhost') || exact.has(`${name}:${port}`);
        if (judged.size >= 256) judged.clear();
        judged.set(host, verdict);
      }
      return verdict;
    },
    describe: ['localhost', '127.0.0.1', '[::1]', ...extra].join(', '),
  };
}

/** The body of the 421 a refused Host gets (§4 shape). */
export function misdirectedBody(host: string | string[] | undefined, check: HostCheck): string {
  const shown = String(host).slice(0, 100);
  return JSON.stringify({
    error: {
      code: 'MisdirectedRequest',
      message: `This server listens on loopback and answers the Host names ${check.describe} only; '${shown}' is not one of them (a DNS rebinding guard). Add it with --allowed-hosts.`,
      type: 'invalidRequest',
    },
  });
}
