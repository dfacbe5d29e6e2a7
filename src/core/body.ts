/**
 * Judging a request body's bytes before they are parsed: the content type (415), strict UTF-8
 * (ParseError for anything else) and the nesting depth.
 */

/** `application/json`, optionally with `charset=utf-8` (any case, quoted or not), and nothing else. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  if (header === 'application/json') return true;
  const [type, ...params] = header.split(';');
  if (type!.trim().toLowerCase() !== 'application/json') return false;
  return params.every((p) => {
    const [name, value] = p.split('=').map((s) => s.trim().toLowerCase());
    return name === 'charset' && (value === 'utf-8' || value === '"utf-8"');
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Strict UTF-8 decoding; null when the bytes are not valid UTF-8. */
export function decodeUtf8(body: Buffer): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/**
 * True when `text` nests arrays and objects deeper than `max`. JSON.parse copes with any depth,
 * but what walks the value afterwards (the validator, JSON.stringify of an echo) recurses and
 * would overflow the stack; the scan skips string contents and costs well under a microsecond
 * for a typical body.
 */
export function exceedsDepth(text: string, max: number): boolean {
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
