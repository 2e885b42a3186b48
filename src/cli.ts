import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { loadConfig, ConfigError } from './platform/config/load-config.ts';
import { startBlocks, ROLES, type Role } from './start.ts';
import { migrateDatabase, withDatabase } from './platform/open-platform.ts';
import { createRegistry } from './modules.ts';
import { rotateSigningKeys } from './core/identity/index.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const version = (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version: string }).version;

const USAGE = `Usage: blocks <command>

  start [gateway|autonomous|collaborative ...]   run the given services (all three when none is named)
  migrate                                        apply database migrations and exit
  keys rotate                                    make a new token signing key current (the old one verifies until its tokens expire)
  help                                           show this text

Configuration: config/default.yaml, config/environments/$BLOCKS_ENV.yaml, then environment
variables (DATABASE_URL, NATS_URL, REDIS_URL, BUS, BLOCKS_DATA_DIR, LOG_LEVEL, BLOCKS__a__b).`;

async function main(argv: readonly string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  const registry = createRegistry();
  const config = loadConfig({
    configDir: process.env.BLOCKS_CONFIG_DIR ?? resolve(root, 'config'),
    env: process.env,
    sections: registry.configSections,
  });

  if (command === 'migrate') {
    const applied = await migrateDatabase(config, registry.migrations);
    console.error(applied.length ? `applied ${applied.join(', ')}` : 'database is up to date');
    return 0;
  }
  if (command === 'keys') {
    if (rest.join(' ') !== 'rotate') {
      console.error(`usage: blocks keys rotate\n\n${USAGE}`);
      return 2;
    }
    const { kid, retired } = await withDatabase(config, registry.migrations, (db) => rotateSigningKeys(db, config));
    console.error(`signing key ${kid} is current${retired ? `; ${retired} is retired and published until its tokens have expired` : ''}`);
    return 0;
  }
  if (command !== 'start') {
    console.error(`unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  const unknown = rest.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (unknown.length) {
    console.error(`unknown service '${unknown.join(', ')}'; choose from ${ROLES.join(', ')}`);
    return 2;
  }
  const roles = rest.length ? (rest as Role[]) : ROLES;
  const running = await startBlocks({ config, roles, version, registry });
  const { platform } = running;
  const gateway = running.urls.gateway ?? Object.values(running.urls)[0] ?? '';
  console.error(
    [
      `Blocks ${version} is running (${platform.db.kind} database, ${platform.bus.kind} bus, ${platform.cache.kind} cache; data in ${config.data_dir}):`,
      ...Object.entries(running.urls).map(([role, url]) => `  ${role.padEnd(13)} ${url}   docs ${url}/docs   health ${url}/health`),
      listeningOn(roles.map((role) => config.services[role].host ?? config.http.host)),
      '',
      `Every route but health needs a credential: a token from POST ${gateway}/oauth/token or an API key (x-api-key).`,
      'See README.md, "First requests".',
    ].join('\n'),
  );

  const first = running.identity.firstStart();
  if (first) {
    // Standard output, once: the secret is not logged, and no later start can show it again.
    console.info(
      [
        '',
        `First start: created tenant '${first.tenant}' and an admin OAuth client (scope identity:admin).`,
        `  client_id     ${first.clientId}`,
        `  client_secret ${first.clientSecret}`,
        'Store the secret now: it is shown only this once (rotate it at POST /api/v1/identity/clients/{client_id}/rotate-secret).',
        '',
        'Get an admin token, make an API key for the AI routes, and route a request:',
        `  TOKEN=$(curl -s -u '${first.clientId}:${first.clientSecret}' -d grant_type=client_credentials ${gateway}/oauth/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`,
        `  KEY=$(curl -s ${gateway}/api/v1/identity/api-keys -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\`,
        `        -d '{"name":"dev","scopes":["ai:route","ai:invoke","ai:read"]}' | sed -E 's/.*"key":"([^"]+)".*/\\1/')`,
        `  curl -s ${gateway}/api/v1/autonomous/ai/route -H "x-api-key: $KEY" -H 'content-type: application/json' \\`,
        `        -d '{"task_type":"code","complexity":"medium","context":{"prompt":"Write a binary search"}}'`,
        '',
      ].join('\n'),
    );
  }

  await new Promise<void>((resolveStop) => {
    const stop = (signal: NodeJS.Signals): void => {
      platform.logger.info({ signal }, 'shutting down');
      resolveStop();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  // A dependency that never answers must not keep a stopping process alive forever.
  const deadline = setTimeout(() => {
    platform.logger.error({ timeout_ms: config.http.shutdown_timeout }, 'graceful shutdown timed out; exiting');
    process.exit(1);
  }, config.http.shutdown_timeout);
  deadline.unref();
  await running.close();
  return 0;
}

/** Where the processes listen, said plainly: an operator must know whether the network can reach them. */
function listeningOn(hosts: readonly string[]): string {
  const distinct = [...new Set(hosts)];
  const describe = (host: string): string => {
    if (host === '0.0.0.0' || host === '::') return `every interface (${host}): reachable from the network`;
    if (host === '127.0.0.1' || host === '::1' || host === 'localhost') {
      return `${host} only (loopback: this machine alone; set http.host to 0.0.0.0 to serve others)`;
    }
    return host;
  };
  return `Listening on ${distinct.map(describe).join('; ')}.`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exitCode = 1;
  },
);
