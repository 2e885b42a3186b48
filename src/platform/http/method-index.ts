import FindMyWay, { type HTTPMethod } from 'find-my-way';

/**
 * Which methods a path is served with, so an unmatched request on a known path gets 405 with
 * `Allow` instead of fastify's 404. Uses the same router fastify does, so patterns match alike.
 */
export function createMethodIndex(): { add(method: string | string[], url: string): void; allowedFor(path: string): string[] } {
  const router = FindMyWay({ ignoreTrailingSlash: false });
  const known = new Set<string>();
  const noop = (): void => undefined;
  return {
    add(method, url) {
      for (const m of Array.isArray(method) ? method : [method]) {
        const key = `${m} ${url}`;
        if (known.has(key)) continue;
        known.add(key);
        router.on(m as HTTPMethod, url, noop);
      }
    },
    allowedFor(path) {
      const methods = new Set<string>();
      for (const key of known) {
        const method = key.slice(0, key.indexOf(' '));
        if (router.find(method as HTTPMethod, path)) methods.add(method);
      }
      return [...methods].sort();
    },
  };
}
