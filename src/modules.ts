import { kernelModule } from './platform/kernel-module.ts';
import { KERNEL_CONFIG_KEYS } from './platform/config/schema.ts';
import { createModuleRegistry, type ModuleRegistry } from './platform/modules/registry.ts';
import type { ModuleManifest } from './platform/modules/manifest.ts';
import { coreModules } from './core/index.ts';
import { gatewayModules } from './gateway/index.ts';
import { autonomousModules } from './autonomous/index.ts';
import { collaborativeModules } from './collaborative/index.ts';

/** Every module Blocks ships, as each service registers them (one line each in its index.ts). */
export const BUILT_IN_MODULES: readonly ModuleManifest[] = [
  kernelModule,
  ...coreModules,
  ...gatewayModules,
  ...autonomousModules,
  ...collaborativeModules,
];

/**
 * The registry of a deployment: the built-in modules, plus `extra` ones (a test's example module,
 * an operator's own). Everything derived from manifests comes from here.
 */
export function createRegistry(extra: readonly ModuleManifest[] = []): ModuleRegistry {
  return createModuleRegistry([...BUILT_IN_MODULES, ...extra], { reservedConfigKeys: KERNEL_CONFIG_KEYS });
}
