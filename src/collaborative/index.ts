import type { ModuleManifest } from '../platform/modules/manifest.ts';

/** The collaborative service's modules (port 8002): one line each as MCP, sync, protocol and workflows land. */
export const collaborativeModules: readonly ModuleManifest[] = [];
