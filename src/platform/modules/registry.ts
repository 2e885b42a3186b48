import { catalogueFile, type ErrorCatalogue } from '../define-errors.ts';
import type { ConfigSection, ModuleManifest, ProcessRole, ServiceName } from './manifest.ts';
import { createScopeCatalog, type ScopeCatalog } from './scopes.ts';

/** Where each service's API lives; a module's `prefix` is appended to its service's. */
export const SERVICE_PREFIXES: Readonly<Record<ServiceName, string>> = {
  gateway: '/api/v1',
  core: '/api/v1',
  autonomous: '/api/v1/autonomous',
  collaborative: '/api/v1/collaborative',
};

/** A folder of migrations and the module that owns them: the module is part of each migration's identity. */
export interface MigrationSource {
  readonly module: string;
  readonly dir: string;
}

/** An error catalogue and the file that defines it (its section of docs/errors.md names the file). */
export interface RegisteredCatalogue {
  readonly module: string;
  readonly file: string;
  readonly catalogue: ErrorCatalogue;
  /** The document listing its codes (the manifest's `errorsDoc`); undefined for docs/errors.md. */
  readonly doc: string | undefined;
}

/**
 * The manifests of one deployment, checked together. Everything that used to be listed by hand in
 * several places is read from here.
 */
export interface ModuleRegistry {
  /** Every module, dependencies before their dependents (registration order otherwise). */
  readonly modules: readonly ModuleManifest[];
  readonly scopes: ScopeCatalog;
  readonly errorCatalogues: readonly RegisteredCatalogue[];
  readonly configSections: readonly ConfigSection[];
  readonly migrations: readonly MigrationSource[];
  /** OpenAPI tags: one per module. */
  readonly tags: ReadonlyArray<{ readonly name: string; readonly description: string }>;
  /** The modules a process running `roles` runs: core modules always, the others where their service runs. */
  runningIn(roles: readonly ProcessRole[]): ModuleManifest[];
  /** The modules whose routes a service serves. */
  ofService(service: ServiceName): ModuleManifest[];
  /** The full path prefix of a module's routes. */
  prefixOf(module: ModuleManifest): string;
  get(name: string): ModuleManifest;
}

/**
 * Checks the manifests and orders them. The kernel's own manifest (src/platform/kernel-module.ts)
 * comes first; pass it as the first element.
 * @throws Error naming the module for a duplicate name, config key, error code, a missing or cyclic dependency
 */
export function createModuleRegistry(
  manifests: readonly ModuleManifest[],
  options: { reservedConfigKeys?: readonly string[] } = {},
): ModuleRegistry {
  const byName = new Map<string, ModuleManifest>();
  for (const manifest of manifests) {
    if (!/^[a-z][a-z0-9-]*$/.test(manifest.name))
      throw new Error(`module name '${manifest.name}' must be lower-case letters, digits and -`);
    if (byName.has(manifest.name)) throw new Error(`two modules are named ${manifest.name}`);
    byName.set(manifest.name, manifest);
  }
  const modules = dependencyOrder(manifests, byName);

  const reserved = new Set(options.reservedConfigKeys ?? []);
  const configSections: ConfigSection[] = [];
  for (const manifest of modules) {
    if (manifest.config === undefined) continue;
    if (reserved.has(manifest.config.key)) throw new Error(`module ${manifest.name}: config key ${manifest.config.key} is the kernel's`);
    reserved.add(manifest.config.key);
    configSections.push(manifest.config);
  }

  const errorCatalogues: RegisteredCatalogue[] = [];
  const codes = new Map<string, string>();
  for (const manifest of modules) {
    for (const catalogue of manifest.errors ?? []) {
      for (const code of Object.keys(catalogue)) {
        const owner = codes.get(code);
        if (owner !== undefined) throw new Error(`error code ${code} is defined by ${owner} and ${catalogueFile(catalogue)}`);
        codes.set(code, catalogueFile(catalogue));
      }
      errorCatalogues.push({ module: manifest.name, file: catalogueFile(catalogue), catalogue, doc: manifest.errorsDoc });
    }
  }

  const scopes = createScopeCatalog(modules.flatMap((manifest) => manifest.scopes ?? []));
  const prefixOf = (manifest: ModuleManifest): string => `${SERVICE_PREFIXES[manifest.service]}${manifest.prefix ?? ''}`;
  return {
    modules,
    scopes,
    errorCatalogues,
    configSections,
    migrations: modules.flatMap((manifest) =>
      manifest.migrations === undefined ? [] : [{ module: manifest.name, dir: manifest.migrations }],
    ),
    tags: modules.map((manifest) => ({ name: manifest.name, description: manifest.description })),
    runningIn: (roles) =>
      modules.filter((manifest) => manifest.service === 'core' || (roles as readonly string[]).includes(manifest.service)),
    ofService: (service) => modules.filter((manifest) => manifest.service === service),
    prefixOf,
    get(name) {
      const manifest = byName.get(name);
      if (manifest === undefined) throw new Error(`no module named ${name} is registered`);
      return manifest;
    },
  };
}

/** Depth-first, in registration order: a module comes after everything it depends on. */
function dependencyOrder(manifests: readonly ModuleManifest[], byName: ReadonlyMap<string, ModuleManifest>): ModuleManifest[] {
  const ordered: ModuleManifest[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (manifest: ModuleManifest, path: readonly string[]): void => {
    const seen = state.get(manifest.name);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new Error(`modules depend on each other in a cycle: ${[...path, manifest.name].join(' → ')}`);
    state.set(manifest.name, 'visiting');
    for (const dependency of manifest.dependsOn ?? []) {
      const target = byName.get(dependency);
      if (target === undefined) throw new Error(`module ${manifest.name} depends on ${dependency}, which is not registered`);
      if (target.service !== 'core' && manifest.service !== target.service) {
        // Only core modules run in every process: another service's module may not be here at all.
        throw new Error(`module ${manifest.name} (${manifest.service}) depends on ${dependency} (${target.service}); use the client port`);
      }
      visit(target, [...path, manifest.name]);
    }
    state.set(manifest.name, 'done');
    ordered.push(manifest);
  };
  for (const manifest of manifests) visit(manifest, []);
  return ordered;
}
