import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createPgliteDatabase } from '../../../src/platform/db/pglite.ts';
import { readMigrations } from '../../../src/platform/db/migrate.ts';
import { hashPassword } from '../../../src/core/identity/index.ts';
import type { RunningBlocks } from '../../../src/start.ts';
import { startTestBlocks, tempDir, testConfig } from '../../support/blocks.ts';
import { migrateAsOneSequence } from '../../support/legacy-migrations.ts';
import { MIGRATIONS, scopes as SCOPES } from '../../support/registry.ts';

// A database the release before modules owned migrations made: one `schema_migrations` sequence
// (versions 1..13), the first-start client and a tenant's admin client holding every scope known
// then, stored one by one. Started on this release, nothing applied runs again, and those two
// clients hold every scope now known, by their roles.
const OLD_KNOWN = ['ai:budgets', 'ai:feedback', 'ai:invoke', 'ai:models:read', 'ai:models:write', 'ai:read', 'ai:route'];
const OLD_SCOPES = [...OLD_KNOWN, 'docs:read', 'identity:admin', 'metrics:read', 'service:read', 'tenants:admin'];
const OLD_TENANT_ADMIN = OLD_SCOPES.filter((scope) => scope !== 'ai:models:write' && scope !== 'tenants:admin');

describe('upgrading a database migrated in one sequence', () => {
  const dir = tempDir('blocks-upgrade');
  const dataDir = join(dir.path, 'data');
  let blocks: RunningBlocks;
  const clients = {
    operator: { id: 'cl_00000000000000000000aaaa', secret: 'operator secret of the old release' },
    lookalike: { id: 'cl_00000000000000000000bbbb', secret: 'a client someone named like it' },
    acmeAdmin: { id: 'cl_00000000000000000000cccc', secret: 'acme admin secret' },
  };

  beforeAll(async () => {
    const db = await createPgliteDatabase({ dataDir: join(dataDir, 'pglite') });
    try {
      // The files the old release had, in its one order: every module's, numbered 1..13.
      const builtIn = MIGRATIONS.filter((source) => source.module !== 'example');
      const all = (await Promise.all(builtIn.map(async (source) => readMigrations(source.dir)))).flat();
      const old = all.filter((m) => m.version <= 13 && !(m.name === 'client_roles')).sort((a, b) => a.version - b.version);
      expect(old.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
      await migrateAsOneSequence(db, old);
      await db.exec("INSERT INTO tenants (id, name) VALUES ('default', 'Default tenant'), ('acme', 'Acme')");
      const insert = async (id: string, tenant: string, name: string, secret: string, scopes: string[], at: string) =>
        db.query(
          'INSERT INTO oauth_clients (client_id, tenant, name, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5::text[], $6)',
          [id, tenant, name, await hashPassword(secret), scopes, at],
        );
      await insert(
        clients.operator.id,
        'default',
        'admin (created on first start)',
        clients.operator.secret,
        OLD_SCOPES,
        '2026-01-01T00:00:00Z',
      );
      await insert(
        clients.lookalike.id,
        'default',
        'admin (created on first start)',
        clients.lookalike.secret,
        ['ai:read'],
        '2026-02-01T00:00:00Z',
      );
      await insert(
        clients.acmeAdmin.id,
        'acme',
        'admin (created with the tenant)',
        clients.acmeAdmin.secret,
        OLD_TENANT_ADMIN,
        '2026-03-01T00:00:00Z',
      );
    } finally {
      await db.close();
    }
    blocks = await startTestBlocks({ config: testConfig({ BLOCKS_DATA_DIR: dataDir }) });
  }, 120_000);
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  it('runs nothing applied again: every old row keeps its number under the module now holding its file', async () => {
    const { rows } = await blocks.platform.db.query<{ module: string; version: number; name: string }>(
      'SELECT module, version, name FROM schema_migrations ORDER BY module, version',
    );
    const key = (r: { module: string; version: number }) => `${r.module}/${r.version}`;
    expect(rows.map(key)).toEqual(
      expect.arrayContaining([
        'platform/1',
        'analytics/2',
        'ai/3',
        'ai/6',
        'identity/7',
        'identity/9',
        'identity/10',
        'platform/13',
        'example/1',
      ]),
    );
    expect(rows.filter((r) => r.module === 'global')).toEqual([]);
  });

  it('gives the old first-start client every scope now known and a tenant admin client every tenant scope, by role', async () => {
    const operator = await blocks.identity.authenticateClient(clients.operator.id, clients.operator.secret);
    expect(operator?.scopes).toEqual(SCOPES.known);
    expect(SCOPES.known).toEqual(expect.arrayContaining(['example:read', 'services:act']));
    const acme = await blocks.identity.authenticateClient(clients.acmeAdmin.id, clients.acmeAdmin.secret);
    expect(acme?.scopes).toEqual([...SCOPES.tenantAdmin]);
  });

  it('leaves a client that only shares the name with what it held', async () => {
    const lookalike = await blocks.identity.authenticateClient(clients.lookalike.id, clients.lookalike.secret);
    expect(lookalike?.scopes).toEqual(['ai:read']);
  });
});
