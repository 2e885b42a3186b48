import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import type { Platform } from '../../platform/platform.ts';
import type { Subscription } from '../../platform/bus/port.ts';
import { API_KEY_REVOKED, createApiKeys, type ApiKeys, type VerifiedApiKey } from './api-keys.ts';
import { bootstrapIdentity, type FirstStart } from './bootstrap.ts';
import { createOAuthClients, type AuthenticatedClient, type OAuthClients } from './oauth-clients.ts';
import { identityRoutes } from './routes.ts';
import { createTenants, tenantRoutes, type Tenants } from './tenants.ts';
import type { Config } from '../../platform/config/schema.ts';
import type { Database } from '../../platform/db/port.ts';
import { createSystemClock } from '../../platform/clock.ts';
import {
  createKeyEncryption,
  createSigningKeys,
  createTokenModule,
  resolveKeyEncryptionKey,
  tokenErrors,
  type TokenModule,
} from './tokens/index.ts';
import { defineModule } from '../../platform/modules/manifest.ts';
import type { ScopeCatalog } from '../../platform/modules/scopes.ts';
import { IDENTITY_SCOPES } from './scopes.ts';
import { selectVerificationKeys } from './tokens/store.ts';
import { createAccess, type Access } from '../../platform/http/access.ts';
import { createIdentityAuthenticator } from './access/authenticator.ts';
import { createContextPolicy } from './access/context-policy.ts';
import { createDeviceRegistry } from './access/device-registry.ts';
import { createDenialAudit } from './access/denial-audit.ts';
import { createDelegation } from './access/delegation.ts';
import { authErrors } from './access/token-errors.ts';
import { ensureServiceClients } from './service-clients.ts';
import { CALLING_SERVICES, serviceCredentialsOf } from '../../platform/clients/service-credentials.ts';
import { identityErrors as baseIdentityErrors } from './errors.ts';
import { userAndDeviceErrors } from './admin-errors.ts';
import { createUsers, type Users } from './users.ts';
import { createDevices, type Devices } from './devices.ts';

/** Every error code the identity admin API raises (listed in docs/errors.md). */
export const identityErrors = { ...baseIdentityErrors, ...userAndDeviceErrors } as const;
export { API_KEY_CREATED, API_KEY_REVOKED } from './api-keys.ts';
export { CLIENT_CREATED, CLIENT_DELETED, CLIENT_SECRET_ROTATED } from './oauth-clients.ts';
export { IDENTITY_ADMIN_SCOPE, TENANTS_ADMIN_SCOPE } from './scopes.ts';
export { TENANT_CREATED, type CreatedTenant, type TenantRecord, type Tenants } from './tenants.ts';
export { USER_CREATED, USER_DELETED, USER_PASSWORD_RESET, USER_ROLES_CHANGED, MIN_PASSWORD_LENGTH } from './users.ts';
export { DEVICE_DELETED, DEVICE_REGISTERED } from './devices.ts';
export type { NewUser, UserPage, UserRecord, Users } from './users.ts';
export type { DevicePage, DeviceRecord, Devices } from './devices.ts';
export { hashPassword, verifyPassword } from './secrets.ts';
export { FIRST_TENANT, type FirstStart } from './bootstrap.ts';
export { ACCESS_DENIED_EVENT } from './access/denial-audit.ts';
export { createIdentityAuthenticator } from './access/authenticator.ts';
export { createContextPolicy, type DeviceRegistry } from './access/context-policy.ts';
export {
  createTokenModule,
  resolveKeyEncryptionKey,
  REFRESH_TOKEN_REUSED,
  type TokenModule,
  type UserAuthenticator,
} from './tokens/index.ts';
export type { ApiKeyRecord, CreatedApiKey, VerifiedApiKey, ApiKeys } from './api-keys.ts';
export type { AuthenticatedClient, OAuthClientRecord, OAuthClientWithSecret, OAuthClients } from './oauth-clients.ts';

export interface IdentityModule {
  readonly apiKeys: ApiKeys;
  readonly clients: OAuthClients;
  /** Users and their roles; also the password check of the token endpoint (pass it as its `users`). */
  readonly users: Users;
  /** Registered devices, for tenants whose rules require one. */
  readonly devices: Devices;
  /** Tenants themselves, for the platform operator (`tenants:admin`). */
  readonly tenants: Tenants;
  /** The zero-trust decision for every app of this process: add its hooks to each (createHttpServer does). */
  readonly access: Access;
  /** The admin API; mount under `/api/v1/identity`. */
  readonly routes: FastifyPluginAsync;
  /** See {@link ApiKeys.verify}: the hot path of every keyed request. */
  verifyApiKey(raw: string): Promise<VerifiedApiKey | null>;
  /** See {@link OAuthClients.authenticate}: argon2id, constant time, null for any mismatch. */
  authenticateClient(clientId: string, secret: string): Promise<AuthenticatedClient | null>;
  /** Set by `start()` on the process that made the first tenant and its admin client; null otherwise. */
  firstStart(): FirstStart | null;
  /**
   * Follows key revocations and device changes from every replica, records key use, writes denial audit events and,
   * with `bootstrap`, makes the first tenant on an empty database. Call before serving.
   */
  start(options?: { bootstrap?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

export interface IdentityModuleOptions {
  /** `iss` of Blocks' own tokens (the gateway's URL unless configured), asked when the first token arrives. */
  readonly ownIssuer: () => string;
  /** The registered modules' scopes and roles (the registry's `scopes`). */
  readonly scopes: ScopeCatalog;
  /** Passed to the API key cache (tests shorten them). */
  readonly apiKeys?: { cacheTtlMs?: number; lastUsedEveryMs?: number; flushEveryMs?: number };
}

/**
 * Identity: tenants, API keys, OAuth clients, users (with roles) and registered devices in the
 * database, with the admin API. Each replica caches verified API keys and device checks and drops
 * an entry the moment `identity.api_key.revoked` or `identity.device.*` arrives, whichever replica
 * made the change.
 */
export function createIdentityModule(
  platform: Pick<Platform, 'config' | 'db' | 'bus' | 'clock' | 'logger' | 'relay' | 'metrics' | 'rateLimiter'>,
  options: IdentityModuleOptions,
): IdentityModule {
  const { config, db, bus, clock, logger, relay, metrics } = platform;
  const onEventAppended = (): void => relay.notify();
  const { scopes } = options;
  const apiKeys = createApiKeys({ db, clock, logger, onEventAppended, scopes, ...options.apiKeys });
  const clients = createOAuthClients({ db, onEventAppended, scopes });
  const deviceRegistry = createDeviceRegistry({ db, clock });
  const users = createUsers({ db, onEventAppended, scopes });
  const tenants = createTenants({ db, clients, onEventAppended });
  const devices = createDevices({ db, onEventAppended, onChanged: (tenant, fingerprint) => deviceRegistry.forget(tenant, fingerprint) });
  const audit = createDenialAudit({ db, logger, metrics, onEventAppended });
  const { auth } = config;
  const access = createAccess({
    authenticator: createIdentityAuthenticator({
      verifyApiKey: (raw) => apiKeys.verify(raw),
      ownIssuer: options.ownIssuer,
      audience: auth.audience,
      ownKeys: async () => ({ keys: await selectVerificationKeys(db, clock.now()) }),
      externalIssuers: auth.external_issuers,
      clockSkewSec: Math.round(auth.clock_skew / 1000),
    }),
    contextPolicy: createContextPolicy(auth.tenants, deviceRegistry),
    onDenied: (denial) => audit.record(denial),
    limiter: platform.rateLimiter,
    delegation: createDelegation({ apiKeys, users, clients, scopes, clock }),
    failedAttempts: { limit: auth.failed_attempts.limit, periodMs: auth.failed_attempts.period, burst: auth.failed_attempts.burst },
    metrics,
    clock,
  });
  let subscriptions: Subscription[] = [];
  let first: FirstStart | null = null;

  return {
    apiKeys,
    clients,
    users,
    devices,
    tenants,
    access,
    routes: async (app) => {
      await app.register(identityRoutes, { apiKeys, clients, users, devices, scopes });
      await app.register(tenantRoutes, { tenants, scopes });
    },
    verifyApiKey: (raw) => apiKeys.verify(raw),
    authenticateClient: (clientId, secret) => clients.authenticate(clientId, secret),
    firstStart: () => first,
    async start(startOptions = {}) {
      // Subscribed before anything is served, so no revocation published from now on is missed.
      const instance = randomUUID().slice(0, 8);
      subscriptions.push(
        await bus.subscribe(
          { consumer: `identity-revocations-${instance}`, subject: API_KEY_REVOKED, ephemeral: true },
          async (delivery) => {
            const keyId = (delivery.data as { payload?: { key_id?: unknown } } | null)?.payload?.key_id;
            if (typeof keyId === 'string') apiKeys.forget(keyId);
          },
        ),
      );
      // A deleted device is refused at once on every replica; a registered one is let in at once
      // (a replica asked about it before remembers "unknown" for a while otherwise).
      subscriptions.push(
        await bus.subscribe(
          { consumer: `identity-devices-${instance}`, subject: 'identity.device.*', ephemeral: true },
          async (delivery) => {
            const payload = (delivery.data as { payload?: { tenant?: unknown; fingerprint?: unknown } } | null)?.payload;
            if (typeof payload?.tenant === 'string' && typeof payload.fingerprint === 'string') {
              deviceRegistry.forget(payload.tenant, payload.fingerprint);
            }
          },
        ),
      );
      if (startOptions.bootstrap) {
        first = await bootstrapIdentity(db, clients);
        if (first) {
          relay.notify();
          logger.warn(
            { tenant: first.tenant, client_id: first.clientId },
            'first start: created tenant and an admin OAuth client; its secret is printed once on standard output',
          );
        }
      }
      apiKeys.start();
      audit.start();
    },
    async stop() {
      await apiKeys.stop();
      await audit.stop();
      await Promise.all(subscriptions.map((subscription) => subscription.stop()));
      subscriptions = [];
    },
  };
}

/** Identity as the registry sees it; `tokens` is Blocks' authorization server, on the gateway only. */
export interface IdentityApi extends IdentityModule {
  readonly tokens?: TokenModule | undefined;
}

/**
 * Identity (spec: the "existing services" every other needs): tenants, API keys, OAuth clients,
 * users and devices with the admin API at `/api/v1/identity`, and Blocks' authorization server
 * (`/oauth/token`, JWKS) where the gateway runs. The access decision it makes runs in every process.
 */
export const identityModule = defineModule<IdentityApi>({
  name: 'identity',
  service: 'core',
  prefix: '/identity',
  description: 'Identity: tenants, API keys, OAuth clients, users, devices, and the authorization server',
  scopes: IDENTITY_SCOPES,
  errors: [baseIdentityErrors, userAndDeviceErrors, tokenErrors, authErrors],
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  create(context) {
    const { platform, roles, registry } = context;
    const { config } = platform;
    const gateway = roles.includes('gateway');
    const issuer = (): string => config.auth.issuer ?? context.publicUrl('gateway');
    // Every process decides access itself (zero trust): a service reached directly is as closed as through the gateway.
    const identity = createIdentityModule(platform, { ownIssuer: issuer, scopes: registry.scopes });
    const keyEncryptionKey = gateway
      ? resolveKeyEncryptionKey({ configured: config.auth.key_encryption_key, env: config.env, dataDir: config.data_dir })
      : undefined;
    const tokens = keyEncryptionKey
      ? createTokenModule({
          db: platform.db,
          clock: platform.clock,
          issuer,
          audience: config.auth.audience,
          accessTokenTtlMs: config.auth.access_token_ttl,
          keyEncryptionKey,
          clients: { authenticate: (clientId, secret) => identity.authenticateClient(clientId, secret) },
          users: identity.users,
          passwordGrant: config.auth.password_grant,
          refreshTokenTtlMs: config.auth.refresh_token_ttl,
          onEventAppended: () => platform.relay.notify(),
        })
      : undefined;
    return {
      routes: identity.routes,
      ...(tokens ? { mounts: [{ prefix: '', routes: tokens.routes }] } : {}),
      // The process that runs the gateway makes the first tenant on an empty database.
      async start() {
        await identity.start({ bootstrap: gateway });
        // The services a split deployment runs elsewhere authenticate to this gateway as themselves.
        if (keyEncryptionKey) {
          const services = CALLING_SERVICES.map((name) => ({ name, credentials: serviceCredentialsOf(keyEncryptionKey, name) }));
          await ensureServiceClients(platform.db, services);
        }
      },
      stop: () => identity.stop(),
      api: { ...identity, tokens },
    };
  },
});

/**
 * `blocks keys rotate`: a new current signing key; the old one stays published until the tokens it
 * signed have expired. Gateways read the current key per token, so running ones switch at once.
 */
export function rotateSigningKeys(db: Database, config: Config): Promise<{ kid: string; retired?: string }> {
  const keyEncryptionKey = resolveKeyEncryptionKey({
    configured: config.auth.key_encryption_key,
    env: config.env,
    dataDir: config.data_dir,
  });
  return createSigningKeys({
    db,
    encryption: createKeyEncryption(keyEncryptionKey),
    clock: createSystemClock(),
    maxTokenTtlMs: config.auth.access_token_ttl,
  }).rotateKeys();
}
