import type { Platform } from '../platform.ts';
import type { Subscription } from '../bus/port.ts';
import type { ModuleInstance, ModuleManifest, ProcessRole, ServiceClients } from './manifest.ts';
import type { ModuleRegistry } from './registry.ts';
import { egressOverrideIn } from '../net/egress-policies.ts';
import { withContentTypes } from '../http/content-types.ts';

/** One module created in this process. */
export interface RunningModule {
  readonly manifest: ModuleManifest;
  readonly instance: ModuleInstance;
}

/** The modules of one process, created in dependency order. */
export interface ProcessModules {
  readonly modules: readonly RunningModule[];
  /** The `api` of a module running here, typed by its manifest. @throws Error when it does not run in this process */
  use<Api>(manifest: ModuleManifest<never, Api>): Api;
  /** Starts each module, then subscribes its consumers, in dependency order; on a failure what started is stopped again. */
  start(): Promise<void>;
  /** Stops consumers, then modules, in reverse order; every one is stopped even if another fails. */
  stop(): Promise<void>;
}

/**
 * Creates the modules `roles` run, each with its own configuration section and the `api` of the
 * modules it declared. The kernel's configuration object carries every section; the registry
 * validated it.
 */
export function createProcessModules(options: {
  registry: ModuleRegistry;
  platform: Platform;
  roles: readonly ProcessRole[];
  publicUrl: (role: ProcessRole) => string;
  clients: ServiceClients;
}): ProcessModules {
  const { registry, platform, roles, publicUrl, clients } = options;
  const created = new Map<string, RunningModule>();
  const sections = platform.config as unknown as Readonly<Record<string, unknown>>;
  for (const manifest of registry.runningIn(roles)) {
    const declared = new Set(manifest.dependsOn ?? []);
    const config = manifest.config === undefined ? undefined : sections[manifest.config.key];
    const instance = manifest.create({
      platform,
      config,
      egress: platform.egress.of(manifest.name, egressOverrideIn(config), `${manifest.config?.key ?? manifest.name}.egress`),
      roles,
      registry,
      publicUrl,
      clients,
      use: <Api>({ name }: ModuleManifest<never, Api>): Api => {
        if (!declared.has(name)) throw new Error(`module ${manifest.name} uses ${name} without declaring it in dependsOn`);
        const dependency = created.get(name);
        if (dependency === undefined) throw new Error(`module ${name}, which ${manifest.name} uses, does not run in this process`);
        return dependency.instance.api as Api;
      },
    });
    created.set(manifest.name, { manifest, instance: withOwnContentTypes(instance) });
  }
  const modules = [...created.values()];
  const started: Array<{ module: RunningModule; subscriptions: Subscription[] }> = [];

  const stopOne = async ({ module, subscriptions }: (typeof started)[number]): Promise<void> => {
    await Promise.allSettled(subscriptions.map((subscription) => subscription.stop()));
    await module.instance
      .stop?.()
      .catch((error: unknown) => platform.logger.warn({ err: error, module: module.manifest.name }, 'stopping module failed'));
  };
  const stop = async (): Promise<void> => {
    while (started.length > 0) await stopOne(started.pop() as (typeof started)[number]);
  };
  return {
    modules,
    use<Api>({ name }: ModuleManifest<never, Api>): Api {
      const module = created.get(name);
      if (module === undefined) throw new Error(`module ${name} does not run in this process`);
      return module.instance.api as Api;
    },
    async start() {
      try {
        for (const module of modules) {
          await module.instance.start?.();
          const entry = { module, subscriptions: [] as Subscription[] };
          started.push(entry);
          for (const consumer of module.instance.consumers ?? []) {
            entry.subscriptions.push(await platform.bus.subscribe(consumer.options, (delivery) => consumer.handle(delivery)));
          }
        }
      } catch (error) {
        await stop();
        throw error;
      }
    },
    stop,
  };
}

/**
 * A module that declares `contentTypes` has its routes and mounts each wrapped in a plugin of their
 * own that accepts them: no other module's route takes its types. (Such a module's mounts are then
 * encapsulated: their hooks no longer reach the whole app.)
 */
function withOwnContentTypes(instance: ModuleInstance): ModuleInstance {
  const parsers = instance.contentTypes ?? [];
  if (parsers.length === 0) return instance;
  return {
    ...instance,
    ...(instance.routes === undefined ? {} : { routes: withContentTypes(instance.routes, parsers) }),
    ...(instance.mounts === undefined
      ? {}
      : { mounts: instance.mounts.map((mount) => ({ ...mount, routes: withContentTypes(mount.routes, parsers) })) }),
  };
}
