import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../src/start.ts';
import { type FirstStart } from '../../../src/core/identity/index.ts';
import { startTestBlocks, testConfig } from '../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../support/credentials.ts';
import { blocksDatabases } from '../../support/databases.ts';
import { probeService } from '../../support/services.ts';
import { scopes as SCOPES } from '../../support/registry.ts';

// Nobody reaches past what they hold. Every identity route follows one of these rules, beside the
// scope the route itself needs (identity:admin, or tenants:admin for tenants):
//
// - creation: the grant rule. A new key, client, user (through its roles) or tenant admin client
//   gets only scopes the caller holds, else 403 SCOPE_NOT_GRANTABLE naming `field`.
// - acts on a principal: the holds-every-target-scope rule. Rotating a client's secret, resetting a
//   user's password, setting its roles, revoking a key, deleting a client or user: the caller holds
//   every scope the target holds, else 403 SCOPE_NOT_GRANTABLE naming the target and the scopes it
//   lacks, and nothing changes. Whoever gets the new secret or sets the password becomes the target;
//   whoever revokes, deletes or demotes it can lock it out.
// - read only: changes nothing and shows no secret, whomever it reads.
// - device: a device is no principal. It holds no scope and signs nothing in (it only lets a
//   tenant's credentials in where `require_device` is on), so the route's identity:admin suffices.
// - authentication (/oauth/token): a token carries at most what its client holds, and for a user
//   what its roles grant too.
//
// The edges (tested below the walk):
// - a user's scopes are what its roles grant: the most any token of theirs carries, whichever of
//   the tenant's clients signs them in, so that is what acting on a user needs;
// - acting on oneself is no exception and needs none: a key holds its own scopes, so it may revoke
//   itself; a token narrowed below its client's scopes may not rotate that client's secret;
// - a tenant's admin (every scope inside a tenant) acts on every principal of its tenant but the
//   operator's, which hold tenants:admin and ai:models:write;
// - the operator (the first-start client) holds every scope, so it acts on every principal of its tenant;
// - the tenant is checked first: another tenant's principal is 404, as a missing one, never 403.
//
// The walk takes the identity routes from the running gateway's route inventory: a route added
// without a rule here fails the first test.

const postgres = await probeService('postgres');
const ID = '/api/v1/identity';
const PASSWORD = 'correct horse battery staple';
const TENANT = 'default'; // the operator's own tenant: its principals are the ones worth taking over
const SETUP = { correlationId: 'acting-on-principals' };

const RULES = {
  creation: 'creation: grant rule',
  actsOn: 'acts on a principal: holds-every-target-scope rule',
  read: 'read only',
  device: 'device: not a principal, identity:admin suffices',
  authentication: 'authentication: a token carries at most what its principal holds',
} as const;
type RuleName = (typeof RULES)[keyof typeof RULES];

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly body: Record<string, unknown>;
}

/** A principal made for one case, and the scopes it holds. */
interface Target {
  readonly id: string;
  readonly scopes: readonly string[];
  /** Fails unless the principal is as it was made: same secret or password, same scopes, not revoked. */
  intact(): Promise<void>;
}

interface Request {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

interface Case {
  readonly rule: RuleName;
  readonly why: string;
  readonly proof: () => Promise<void>;
}

for (const setup of blocksDatabases(postgres)) {
  describe.skipIf(!setup.available)(`acting on a principal needs every scope it holds (${setup.name})`, () => {
    let blocks: RunningBlocks;
    let creds: TestCredentials;
    let drop: () => Promise<void>;
    let operator: FirstStart;
    /** Wide principals of the operator's tenant, for the reads. */
    const wide = {} as { keyId: string; userId: string; deviceId: string };

    beforeAll(async () => {
      const db = await setup.open();
      drop = db.drop;
      blocks = await startTestBlocks({ config: testConfig(db.env, { auth: { password_grant: true } }), roles: ['gateway'] });
      creds = testCredentials(blocks);
      const first = blocks.identity.firstStart();
      if (first === null) throw new Error('no first-start client');
      operator = first;
      wide.keyId = (await blocks.identity.apiKeys.create(TENANT, { name: 'wide', scopes: [...SCOPES.known], expiresAt: null }, SETUP)).id;
      wide.userId = (
        await blocks.identity.users.create(TENANT, { email: 'wide@example.com', password: PASSWORD, roles: ['admin'] }, SETUP)
      ).id;
      wide.deviceId = (await blocks.identity.devices.register(TENANT, { name: 'wide', fingerprint: 'wide-device' }, SETUP)).id;
    });
    afterAll(async () => {
      await blocks?.close();
      await drop?.();
    });

    const call = async (method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<Answer> => {
      const res = await fetch(`${blocks.urls.gateway}${path}`, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, text, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {} };
    };
    const holding = (scopes: readonly string[], tenant = TENANT): Promise<Record<string, string>> => creds.headers(tenant, scopes);
    const token = async (client: { id: string; secret: string }, form: Record<string, string>): Promise<Answer> => {
      const res = await fetch(`${blocks.urls.gateway}/oauth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
        },
        body: new URLSearchParams(form),
      });
      const text = await res.text();
      return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown> };
    };
    const bearer = async (client: { id: string; secret: string }, scope?: string): Promise<Record<string, string>> => {
      const answer = await token(client, { grant_type: 'client_credentials', ...(scope === undefined ? {} : { scope }) });
      expect(answer.status, answer.text).toBe(200);
      return { authorization: `Bearer ${answer.body['access_token'] as string}` };
    };
    const identityEvents = async (): Promise<number> =>
      (await blocks.platform.db.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE event_type LIKE 'identity.%'")).rows[0]
        ?.n ?? 0;
    let made = 0;
    const email = (): string => `someone${++made}-${Math.random().toString(36).slice(2, 8)}@example.com`;

    // Principals of the operator's tenant, made by the platform (no rule applies to it).
    const key = async (scopes: readonly string[]): Promise<Target & { key: string }> => {
      const created = await blocks.identity.apiKeys.create(TENANT, { name: 'target', scopes: [...scopes], expiresAt: null }, SETUP);
      return {
        id: created.id,
        key: created.key,
        scopes: created.scopes,
        intact: async () => expect(await blocks.identity.verifyApiKey(created.key)).toMatchObject({ scopes: created.scopes }),
      };
    };
    const client = async (scopes: readonly string[], tenant = TENANT): Promise<Target & { secret: string }> => {
      const created = await blocks.identity.clients.create(tenant, { name: 'target', scopes: [...scopes] }, SETUP);
      return {
        id: created.client_id,
        secret: created.client_secret,
        scopes: created.scopes,
        intact: async () =>
          expect(await blocks.identity.authenticateClient(created.client_id, created.client_secret)).toMatchObject({
            scopes: created.scopes,
          }),
      };
    };
    const user = async (roles: readonly string[]): Promise<Target & { email: string }> => {
      const address = email();
      const created = await blocks.identity.users.create(TENANT, { email: address, password: PASSWORD, roles }, SETUP);
      return {
        id: created.id,
        email: address,
        scopes: created.scopes,
        intact: async () => {
          expect(await blocks.identity.users.authenticate(TENANT, address, PASSWORD)).toMatchObject({ scopes: created.scopes });
        },
      };
    };

    /**
     * The holds-every-target-scope rule on one route: a caller lacking one of the target's scopes
     * (identity:admin and all the others) is refused, naming it, and nothing changes; a caller
     * holding them all is served.
     */
    const actsOn = (make: () => Promise<Target>, request: (target: Target) => Request, served: number) => async (): Promise<void> => {
      const target = await make();
      const lacking = target.scopes.at(-1) as string;
      const narrow = await holding(['identity:admin', ...target.scopes.filter((scope) => scope !== lacking)]);
      const before = await identityEvents();
      const { method, path, body } = request(target);
      const refused = await call(method, path, narrow, body);
      expect(refused.status, `${method} ${path}: ${refused.text}`).toBe(403);
      expect(refused.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', scopes: [lacking] });
      expect(refused.text).not.toMatch(/client_secret|"key"/);
      expect(await identityEvents()).toBe(before);
      await target.intact();

      const allowed = await call(method, path, await holding(['identity:admin', ...target.scopes]), body);
      expect(allowed.status, `${method} ${path}: ${allowed.text}`).toBe(served);
    };

    /** The grant rule on one route: giving a scope the caller lacks is refused, naming it; giving what it holds is served. */
    const creation =
      (request: (scopes: readonly string[]) => Request, route: readonly string[], field: string) => async (): Promise<void> => {
        const given = SCOPES.scopesOfRoles(['viewer']);
        const { method, path, body } = request(given);
        const narrow = await holding(route);
        const before = await identityEvents();
        const refused = await call(method, path, narrow, body);
        expect(refused.status, refused.text).toBe(403);
        expect(refused.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', field, scopes: given });
        expect(await identityEvents()).toBe(before);
        expect((await call(method, path, await holding([...route, ...given]), body)).status).toBe(201);
      };

    /** A read: any identity admin may make it, whatever it reads, and it changes nothing and shows no secret. */
    const read =
      (path: () => string, scopes: readonly string[] = ['identity:admin']) =>
      async (): Promise<void> => {
        const narrow = await holding(scopes);
        const before = await identityEvents();
        const answer = await call('GET', path(), narrow);
        expect(answer.status, answer.text).toBe(200);
        expect(answer.text).not.toMatch(/client_secret|"key"|password|hash/i);
        expect(await identityEvents()).toBe(before);
      };

    const CASES: Record<string, Case> = {
      [`POST ${ID}/api-keys`]: {
        rule: RULES.creation,
        why: 'the key gets only scopes the caller holds',
        proof: creation(
          (scopes) => ({ method: 'POST', path: `${ID}/api-keys`, body: { name: 'new', scopes } }),
          ['identity:admin'],
          'scopes',
        ),
      },
      [`GET ${ID}/api-keys`]: { rule: RULES.read, why: 'lists keys, never the keys themselves', proof: read(() => `${ID}/api-keys`) },
      [`GET ${ID}/api-keys/:id`]: {
        rule: RULES.read,
        why: 'one key, however wide, never the key itself',
        proof: read(() => `${ID}/api-keys/${wide.keyId}`),
      },
      [`DELETE ${ID}/api-keys/:id`]: {
        rule: RULES.actsOn,
        why: 'revoking locks every holder of the key out',
        proof: actsOn(
          () => key(['ai:invoke', 'ai:read']),
          (target) => ({ method: 'DELETE', path: `${ID}/api-keys/${target.id}` }),
          200,
        ),
      },
      [`POST ${ID}/clients`]: {
        rule: RULES.creation,
        why: 'the client gets only scopes the caller holds',
        proof: creation(
          (scopes) => ({ method: 'POST', path: `${ID}/clients`, body: { name: 'new', scopes } }),
          ['identity:admin'],
          'scopes',
        ),
      },
      [`GET ${ID}/clients`]: { rule: RULES.read, why: 'lists clients, never their secrets', proof: read(() => `${ID}/clients`) },
      [`GET ${ID}/clients/:client_id`]: {
        rule: RULES.read,
        why: 'one client, the operator’s too, never its secret',
        proof: read(() => `${ID}/clients/${operator.clientId}`),
      },
      [`POST ${ID}/clients/:client_id/rotate-secret`]: {
        rule: RULES.actsOn,
        why: 'whoever gets the new secret is the client from then on',
        proof: actsOn(
          () => client(['ai:invoke', 'ai:read']),
          (target) => ({ method: 'POST', path: `${ID}/clients/${target.id}/rotate-secret` }),
          200,
        ),
      },
      [`DELETE ${ID}/clients/:client_id`]: {
        rule: RULES.actsOn,
        why: 'deleting locks the client out',
        proof: actsOn(
          () => client(['ai:invoke', 'ai:read']),
          (target) => ({ method: 'DELETE', path: `${ID}/clients/${target.id}` }),
          204,
        ),
      },
      [`POST ${ID}/users`]: {
        rule: RULES.creation,
        why: 'the user gets only roles whose scopes the caller holds',
        proof: creation(
          () => ({ method: 'POST', path: `${ID}/users`, body: { email: email(), password: PASSWORD, roles: ['viewer'] } }),
          ['identity:admin'],
          'roles',
        ),
      },
      [`GET ${ID}/users`]: { rule: RULES.read, why: 'lists users, never a password', proof: read(() => `${ID}/users`) },
      [`GET ${ID}/users/:id`]: { rule: RULES.read, why: 'one user, an admin too', proof: read(() => `${ID}/users/${wide.userId}`) },
      [`PUT ${ID}/users/:id/roles`]: {
        rule: RULES.actsOn,
        why: 'the caller holds every scope the current roles grant (and, by the grant rule, the new ones)',
        proof: actsOn(
          () => user(['developer']),
          (target) => ({ method: 'PUT', path: `${ID}/users/${target.id}/roles`, body: { roles: [] } }),
          200,
        ),
      },
      [`POST ${ID}/users/:id/password`]: {
        rule: RULES.actsOn,
        why: 'whoever sets the password signs in as the user',
        proof: actsOn(
          () => user(['developer']),
          (target) => ({ method: 'POST', path: `${ID}/users/${target.id}/password`, body: { password: 'chosen by the caller' } }),
          204,
        ),
      },
      [`DELETE ${ID}/users/:id`]: {
        rule: RULES.actsOn,
        why: 'deleting locks the user out',
        proof: actsOn(
          () => user(['developer']),
          (target) => ({ method: 'DELETE', path: `${ID}/users/${target.id}` }),
          204,
        ),
      },
      [`POST ${ID}/devices`]: {
        rule: RULES.device,
        why: 'a device holds no scope and signs nobody in; it only lets credentials in where devices are required',
        proof: async () => {
          const created = await call('POST', `${ID}/devices`, await holding(['identity:admin']), {
            name: 'new',
            fingerprint: 'new-device',
          });
          expect(created.status, created.text).toBe(201);
        },
      },
      [`GET ${ID}/devices`]: { rule: RULES.read, why: 'lists devices', proof: read(() => `${ID}/devices`) },
      [`GET ${ID}/devices/:id`]: { rule: RULES.read, why: 'one device', proof: read(() => `${ID}/devices/${wide.deviceId}`) },
      [`DELETE ${ID}/devices/:id`]: {
        rule: RULES.device,
        why: 'a device holds no scope: deleting one takes nobody’s scopes away',
        proof: async () => {
          const device = await blocks.identity.devices.register(TENANT, { name: 'doomed', fingerprint: 'doomed-device' }, SETUP);
          expect((await call('DELETE', `${ID}/devices/${device.id}`, await holding(['identity:admin']))).status).toBe(204);
        },
      },
      [`POST ${ID}/tenants`]: {
        rule: RULES.creation,
        why: 'the new tenant’s admin client gets every scope inside a tenant, which the caller must hold',
        proof: async () => {
          const operatorOnly = await holding(['tenants:admin']);
          const refused = await call('POST', `${ID}/tenants`, operatorOnly, { id: 'refused', name: 'Refused' });
          expect(refused.status, refused.text).toBe(403);
          expect(refused.body).toMatchObject({
            code: 'SCOPE_NOT_GRANTABLE',
            field: 'admin_client.scopes',
            scopes: [...SCOPES.tenantAdmin].sort(),
          });
          expect((await call('GET', `${ID}/tenants/refused`, await holding(['tenants:admin']))).status).toBe(404);
          const created = await call('POST', `${ID}/tenants`, await holding(['tenants:admin', ...SCOPES.tenantAdmin]), {
            id: 'granted',
            name: 'Granted',
          });
          expect(created.status, created.text).toBe(201);
        },
      },
      [`GET ${ID}/tenants`]: {
        rule: RULES.read,
        why: 'the operator’s list of tenants',
        proof: read(() => `${ID}/tenants`, ['tenants:admin']),
      },
      [`GET ${ID}/tenants/:id`]: {
        rule: RULES.read,
        why: 'one tenant, for the operator',
        proof: read(() => `${ID}/tenants/${TENANT}`, ['tenants:admin']),
      },
      ['POST /oauth/token']: {
        rule: RULES.authentication,
        why: 'the client’s scopes, and for a user those its roles grant too: never more',
        proof: async () => {
          const narrow = await client(SCOPES.scopesOfRoles(['viewer']));
          const wider = await token(narrow, { grant_type: 'client_credentials', scope: 'ai:read ai:invoke' });
          expect(wider.status).toBe(400);
          expect(wider.body['error']).toBe('invalid_scope');
          const developer = await user(['developer']);
          const signedIn = await token(narrow, { grant_type: 'password', username: developer.email, password: PASSWORD });
          expect(signedIn.body['scope']).toBe(SCOPES.scopesOfRoles(['viewer']).join(' '));
        },
      },
    };

    /** The identity module's routes the gateway serves, that take a credential; HEAD twins folded into their GET. */
    const identityRoutes = (): string[] => [
      ...new Set(
        (blocks.apps.gateway?.routeInventory() ?? [])
          .filter((route) => route.scope !== 'public' && (route.url.startsWith(`${ID}/`) || route.url.startsWith('/oauth/')))
          .map((route) => `${route.method === 'HEAD' ? 'GET' : route.method} ${route.url}`),
      ),
    ];

    it('states the rule of every identity route (a new route without one fails here), and of no route that is gone', () => {
      const routes = identityRoutes();
      expect(routes.length).toBeGreaterThan(20);
      expect(
        routes.filter((route) => CASES[route] === undefined),
        'identity routes without a rule: add one to CASES',
      ).toEqual([]);
      expect(
        Object.keys(CASES).filter((route) => !routes.includes(route)),
        'rules of routes no longer served',
      ).toEqual([]);
      // Every operation that changes or takes over a principal follows the holds rule.
      expect(
        Object.entries(CASES)
          .filter(([, kase]) => kase.rule === RULES.actsOn)
          .map(([route]) => route)
          .sort(),
      ).toEqual(
        [
          `DELETE ${ID}/api-keys/:id`,
          `DELETE ${ID}/clients/:client_id`,
          `DELETE ${ID}/users/:id`,
          `POST ${ID}/clients/:client_id/rotate-secret`,
          `POST ${ID}/users/:id/password`,
          `PUT ${ID}/users/:id/roles`,
        ].sort(),
      );
    });

    for (const [route, kase] of Object.entries(CASES)) {
      it(`${route}: ${kase.rule} (${kase.why})`, kase.proof);
    }

    describe('edges', () => {
      it("a user's scopes are what its roles grant, whichever client signs it in", async () => {
        // No client of the tenant carries ai:invoke for a developer here; taking the user over still hands the roles' scopes to whoever signs in next.
        const developer = await user(['developer']);
        const answer = await call(
          'POST',
          `${ID}/users/${developer.id}/password`,
          await holding(['identity:admin', ...SCOPES.scopesOfRoles(['viewer'])]),
          { password: 'chosen by the caller' },
        );
        expect(answer.status).toBe(403);
        expect(answer.body).toMatchObject({
          code: 'SCOPE_NOT_GRANTABLE',
          id: developer.id,
          // What a developer holds beyond a viewer (ai:feedback, ai:invoke, ai:route, and every registered module's developer scopes).
          scopes: SCOPES.roles.developer.filter((scope) => !SCOPES.roles.viewer.includes(scope)),
        });
        await developer.intact();
        // A user without roles holds nothing: any identity admin may reset it.
        const nobody = await user([]);
        const reset = await call('POST', `${ID}/users/${nobody.id}/password`, await holding(['identity:admin']), {
          password: 'chosen by the caller',
        });
        expect(reset.status).toBe(204);
      });

      it('roles: the caller holds both the scopes it takes away and those it gives', async () => {
        const viewerHolder = await holding(['identity:admin', ...SCOPES.scopesOfRoles(['viewer'])]);
        const viewer = await user(['viewer']);
        const promoted = await call('PUT', `${ID}/users/${viewer.id}/roles`, viewerHolder, { roles: ['developer'] });
        expect(promoted.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', field: 'roles' });
        const developer = await user(['developer']);
        const demoted = await call('PUT', `${ID}/users/${developer.id}/roles`, viewerHolder, { roles: ['viewer'] });
        expect(demoted.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', id: developer.id });
        await developer.intact();
        expect((await call('PUT', `${ID}/users/${viewer.id}/roles`, viewerHolder, { roles: [] })).status).toBe(200);
      });

      it('a key may revoke itself: it holds its own scopes', async () => {
        const own = await key(['identity:admin', 'ai:read']);
        const revoked = await call('DELETE', `${ID}/api-keys/${own.id}`, { 'x-api-key': own.key });
        expect(revoked.status, revoked.text).toBe(200);
        expect(await blocks.identity.verifyApiKey(own.key)).toBeNull();
      });

      it("a client's token may rotate its client's secret, unless narrowed below the client's scopes", async () => {
        const own = await client(['identity:admin', 'ai:read']);
        const narrowed = await call('POST', `${ID}/clients/${own.id}/rotate-secret`, await bearer(own, 'identity:admin'));
        expect(narrowed.status).toBe(403);
        expect(narrowed.body).toMatchObject({ code: 'SCOPE_NOT_GRANTABLE', client_id: own.id, scopes: ['ai:read'] });
        await own.intact();
        const whole = await call('POST', `${ID}/clients/${own.id}/rotate-secret`, await bearer(own));
        expect(whole.status).toBe(200);
        expect(await blocks.identity.authenticateClient(own.id, whole.body['client_secret'] as string)).not.toBeNull();
      });

      it("a tenant's admin acts on every principal of its tenant but the operator's", async () => {
        const tenantAdmin = await holding(SCOPES.tenantAdmin);
        for (const [method, path] of [
          ['POST', `${ID}/clients/${operator.clientId}/rotate-secret`],
          ['DELETE', `${ID}/clients/${operator.clientId}`],
          ['DELETE', `${ID}/api-keys/${wide.keyId}`],
        ] as const) {
          const answer = await call(method, path, tenantAdmin);
          expect(answer.status, `${method} ${path}`).toBe(403);
          // The operator's scopes (ai:models:write, services:act, tenants:admin): every one the tenant's admin lacks.
          expect(answer.body['scopes'], `${method} ${path}`).toEqual([...SCOPES.operator].sort());
        }
        expect((await call('GET', `${ID}/api-keys/${wide.keyId}`, tenantAdmin)).body['revoked_at']).toBeNull();
        expect(await blocks.identity.authenticateClient(operator.clientId, operator.clientSecret)).not.toBeNull();
        // An admin user holds only what a tenant's admin does.
        const admin = await user(['admin']);
        expect((await call('POST', `${ID}/users/${admin.id}/password`, tenantAdmin, { password: 'chosen by the caller' })).status).toBe(
          204,
        );

        // A tenant made by the operator: its admin client acts on everything in it.
        const made = await call('POST', `${ID}/tenants`, await holding(SCOPES.known), { id: 'edge-tenant', name: 'Edge' });
        const adminClient = made.body['admin_client'] as { client_id: string; client_secret: string };
        const asTenantAdmin = await bearer({ id: adminClient.client_id, secret: adminClient.client_secret });
        const sibling = await client(SCOPES.tenantAdmin, 'edge-tenant');
        expect((await call('POST', `${ID}/clients/${sibling.id}/rotate-secret`, asTenantAdmin)).status).toBe(200);
        // Another tenant's principal is not found, not refused: its existence stays hidden.
        const elsewhere = await call('POST', `${ID}/clients/${operator.clientId}/rotate-secret`, asTenantAdmin);
        expect(elsewhere.status).toBe(404);
        expect(elsewhere.body['code']).toBe('OAUTH_CLIENT_NOT_FOUND');
      });

      it('the operator holds every scope: it acts on every principal of its tenant, itself included', async () => {
        const asOperator = await bearer({ id: operator.clientId, secret: operator.clientSecret });
        const admin = await user(['admin']);
        expect((await call('POST', `${ID}/users/${admin.id}/password`, asOperator, { password: 'chosen by the operator' })).status).toBe(
          204,
        );
        expect((await call('DELETE', `${ID}/api-keys/${wide.keyId}`, asOperator)).status).toBe(200);
        const rotated = await call('POST', `${ID}/clients/${operator.clientId}/rotate-secret`, asOperator);
        expect(rotated.status).toBe(200);
        operator = { ...operator, clientSecret: rotated.body['client_secret'] as string };
        expect(await blocks.identity.authenticateClient(operator.clientId, operator.clientSecret)).toMatchObject({ scopes: SCOPES.known });
      });
    });
  });
}
