/**
 * A database URL as logs and errors may show it: without its password, its fragment, or the
 * values of query options that carry secrets (a TLS key's password, AWS credentials in
 * authMechanismProperties, a password given as an option).
 */
const SECRET_OPTION = /pass|secret|token|credential|^authmechanismproperties$/i;

/** @example redactUrl('mongodb://api:s3cret@db:27017/?tlsCertificateKeyFilePassword=k') // 'mongodb://api:***@db:27017/?tlsCertificateKeyFilePassword=***' */
export function redactUrl(url: string): string {
  const withoutFragment = url.split('#')[0]!;
  const scheme = withoutFragment.indexOf('//');
  if (scheme < 0) return withoutFragment;
  const authorityStart = scheme + 2;
  const rest = withoutFragment.slice(authorityStart);
  const authorityEnd = rest.search(/[/?]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  // The userinfo ends at the authority's last '@': mysql2 takes a password with an unencoded one.
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at);
  const hidden = userinfo.includes(':') ? `${userinfo.slice(0, userinfo.indexOf(':'))}:***${authority.slice(at)}` : authority;
  const tail = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  const query = tail.indexOf('?');
  const path = query < 0 ? tail : tail.slice(0, query);
  if (query < 0) return `${withoutFragment.slice(0, authorityStart)}${hidden}${path}`;
  const options = tail
    .slice(query + 1)
    .split('&')
    .map((option) => {
      const eq = option.indexOf('=');
      return eq > 0 && SECRET_OPTION.test(decoded(option.slice(0, eq))) ? `${option.slice(0, eq)}=***` : option;
    });
  return `${withoutFragment.slice(0, authorityStart)}${hidden}${path}?${options.join('&')}`;
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
