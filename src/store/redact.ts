/**
 * A database URL as logs and errors may show it: without its password, and without the values
 * of query options that carry secrets (a TLS key's password, AWS credentials in
 * authMechanismProperties, a password given as an option).
 */
const SECRET_OPTION = /pass|secret|token|key|cred|propert/i;

/** @example redactUrl('mongodb://api:s3cret@db:27017/?tlsCertificateKeyFilePassword=k') // 'mongodb://api:***@db:27017/?tlsCertificateKeyFilePassword=***' */
export function redactUrl(url: string): string {
  const withoutPassword = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  const query = withoutPassword.indexOf('?', withoutPassword.indexOf('//') + 2);
  if (query < 0) return withoutPassword;
  const options = withoutPassword
    .slice(query + 1)
    .split('&')
    .map((option) => {
      const eq = option.indexOf('=');
      return eq > 0 && SECRET_OPTION.test(decodeURIComponentSafe(option.slice(0, eq))) ? `${option.slice(0, eq)}=***` : option;
    });
  return `${withoutPassword.slice(0, query)}?${options.join('&')}`;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
