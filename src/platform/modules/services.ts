import type { ServiceModule } from '../service-module.ts';
import type { ModuleRegistry } from './registry.ts';
import { SERVICE_PREFIXES } from './registry.ts';
import type { ProcessModules } from './runtime.ts';
import { serviceInfoRoute } from '../http/service-info.ts';
import { taggedRoutes } from './tagged-routes.ts';

export type RoutedService = ServiceModule['name'];

/**
 * Composes a service from the modules of it running here: `GET <prefix>` describes it (version,
 * modules, effective settings), then each module's routes under its own prefix, each tagged with
 * the module's name in the OpenAPI document.
 */
export function composeService(options: {
  name: RoutedService;
  registry: ModuleRegistry;
  modules: ProcessModules;
  version: string;
  /** Service-wide settings (`<service>_blocks.config`), shown beside the modules' own. */
  settings: Readonly<Record<string, number | string | boolean>>;
}): ServiceModule {
  const { name, registry, modules } = options;
  const prefix = SERVICE_PREFIXES[name];
  const own = modules.modules.filter((module) => module.manifest.service === name);
  const settings = { ...options.settings };
  for (const module of own) Object.assign(settings, module.instance.settings);
  return {
    name,
    prefix,
    extraMounts: own.flatMap((module) => module.instance.mounts ?? []),
    routes: async (app) => {
      await app.register(serviceInfoRoute, {
        service: name,
        version: options.version,
        modules: own.map((module) => module.manifest.name),
        settings,
      });
      for (const module of own) {
        if (module.instance.routes === undefined) continue;
        await app.register(taggedRoutes(module.manifest.name, module.instance.routes), {
          prefix: registry.prefixOf(module.manifest).slice(prefix.length),
        });
      }
    },
  };
}

/** The paths a service answers on: what a gateway running elsewhere forwards to it. */
export function servicePrefixes(registry: ModuleRegistry, service: RoutedService): string[] {
  return [SERVICE_PREFIXES[service], ...registry.ofService(service).flatMap((manifest) => manifest.absolutePrefixes ?? [])];
}
