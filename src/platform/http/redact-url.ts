/** Query parameters whose values are credentials or tickets: never written to a log. */
const SECRET_PARAMETER = /^(?:ticket|.*token.*|.*key.*|.*secret.*|password|code|signature|sig)$/i;

/**
 * The URL as a log line may show it: the values of credential-like query parameters (a WebSocket
 * `ticket`, an `access_token` a client sent by mistake) replaced with `[redacted]`, the rest as sent.
 */
export function redactUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  const parts = url
    .slice(query + 1)
    .split('&')
    .map((part) => {
      const equals = part.indexOf('=');
      const name = equals === -1 ? part : part.slice(0, equals);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // A malformed escape is matched as written: the raw name is still checked below.
      }
      return equals !== -1 && (SECRET_PARAMETER.test(decoded) || SECRET_PARAMETER.test(name)) ? `${name}=[redacted]` : part;
    });
  return `${url.slice(0, query)}?${parts.join('&')}`;
}
