import { describe, expect, it } from 'vitest';
import { Type } from 'typebox';
import { createModuleRegistry } from '../../../src/platform/modules/registry.ts';
import { defineModule, type ModuleManifest } from '../../../src/platform/modules/manifest.ts';
import { defineErrors } from '../../../src/platform/define-errors.ts';
import { KERNEL_CONFIG_KEYS } from '../../../src/platform/config/schema.ts';
import { createRegistry } from '../../../src/modules.ts';
import { testRegistry } from '../../support/registry.ts';

const bare = (name: string, more: Partial<ModuleManifest> = {}): ModuleManifest =>
  defineModule({ name, service: 'collaborative', description: `${name} module`, create: () => ({}), ...more });

describe('module registry', () => {
  it('orders modules after what they depend on, registration order otherwise', () => {
    const registry = createModuleRegistry([bare('c', { dependsOn: ['b'] }), bare('a'), bare('b', { dependsOn: ['a'] })]);
    expect(registry.modules.map((m) => m.name)).toEqual(['a', 'b', 'c']);
  });

  it('refuses a repeated name, a missing or cyclic dependency, and one on another service', () => {
    expect(() => createModuleRegistry([bare('a'), bare('a')])).toThrow(/two modules are named a/);
    expect(() => createModuleRegistry([bare('a', { dependsOn: ['nope'] })])).toThrow(/depends on nope, which is not registered/);
    expect(() => createModuleRegistry([bare('a', { dependsOn: ['b'] }), bare('b', { dependsOn: ['a'] })])).toThrow(/cycle: a → b → a/);
    expect(() => createModuleRegistry([bare('a', { service: 'autonomous' }), bare('b', { dependsOn: ['a'] })])).toThrow(/client port/);
    expect(() => createModuleRegistry([bare('Bad Name')])).toThrow(/lower-case/);
  });

  it('refuses a config key the kernel owns or another module took, an error code defined twice, a scope defined twice', () => {
    const section = (key: string) => ({ key, schema: Type.Object({}), defaults: {} });
    expect(() => createModuleRegistry([bare('a', { config: section('http') })], { reservedConfigKeys: KERNEL_CONFIG_KEYS })).toThrow(
      /config key http is the kernel's/,
    );
    expect(() => createModuleRegistry([bare('a', { config: section('x') }), bare('b', { config: section('x') })])).toThrow(/x/);
    const one = defineErrors(import.meta.url, { SAME_CODE: { status: 400, title: 'One' } });
    const two = defineErrors(import.meta.url, { SAME_CODE: { status: 404, title: 'Two' } });
    expect(() => createModuleRegistry([bare('a', { errors: [one] }), bare('b', { errors: [two] })])).toThrow(/SAME_CODE/);
    const scope = { name: 'a:read', description: 'read' };
    expect(() => createModuleRegistry([bare('a', { scopes: [scope] }), bare('b', { scopes: [scope] })])).toThrow(
      /a:read is defined by two/,
    );
    expect(() => createModuleRegistry([bare('a', { scopes: [{ ...scope, operator: true, roles: ['viewer'] }] })])).toThrow(
      /no role may carry/,
    );
  });

  it('derives roles: viewer scopes reach every role, admin holds every tenant scope, operator scopes no role', () => {
    const { scopes } = createModuleRegistry([
      bare('a', {
        scopes: [
          { name: 'a:read', description: 'r', roles: ['viewer'] },
          { name: 'a:use', description: 'u', roles: ['developer'] },
          { name: 'a:spend', description: 's', roles: ['operator'] },
          { name: 'a:admin', description: 'admin only' },
          { name: 'a:global', description: 'operator', operator: true },
        ],
      }),
    ]);
    expect(scopes.roles).toEqual({
      viewer: ['a:read'],
      developer: ['a:read', 'a:use'],
      operator: ['a:read', 'a:spend'],
      admin: ['a:admin', 'a:read', 'a:spend', 'a:use'],
    });
    expect(scopes.operator).toEqual(['a:global']);
    expect(scopes.scopesOfRoles(['platform'])).toEqual(scopes.known);
    expect(scopes.isRoleName('platform')).toBe(false);
    expect(scopes.scopesNotHeld(['a:global', 'gone:scope'], ['a:read'])).toEqual(['a:global']);
  });

  it('gives each module its prefix under its service, and forwards what a service declares outside it', () => {
    const registry = createRegistry();
    expect(registry.prefixOf(registry.get('ai'))).toBe('/api/v1/autonomous/ai');
    expect(registry.prefixOf(registry.get('identity'))).toBe('/api/v1/identity');
    expect(registry.get('ai').absolutePrefixes).toEqual(['/v1']);
  });

  it('reads the built-in scopes, roles, catalogues and migrations from the manifests alone', () => {
    const registry = createRegistry();
    expect(registry.scopes.known).toEqual([
      'ai:budgets',
      'ai:feedback',
      'ai:invoke',
      'ai:models:read',
      'ai:models:write',
      'ai:read',
      'ai:route',
      'docs:read',
      'identity:admin',
      'metrics:read',
      'service:read',
      'services:act',
      'tenants:admin',
    ]);
    expect(registry.scopes.operator.toSorted()).toEqual(['ai:models:write', 'services:act', 'tenants:admin']);
    expect(registry.scopes.roles.developer).toEqual([
      'ai:feedback',
      'ai:invoke',
      'ai:models:read',
      'ai:read',
      'ai:route',
      'docs:read',
      'service:read',
    ]);
    expect(registry.migrations.map((m) => m.module)).toEqual(['platform', 'identity', 'analytics', 'ai']);
    expect(registry.configSections.map((s) => s.key)).toEqual(['gateway', 'ai']);
    // A test's registry adds the example module and nothing else.
    expect(testRegistry.modules.map((m) => m.name)).toEqual([...registry.modules.map((m) => m.name), 'example']);
    expect(testRegistry.scopes.roles.viewer).toEqual(expect.arrayContaining(['example:read']));
  });
});
