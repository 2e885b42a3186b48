import type { ModuleManifest } from '../platform/modules/manifest.ts';
import { identityModule } from './identity/index.ts';
import { analyticsModule } from './analytics/index.ts';

/** The spec's existing services the others need: one line each. */
export const coreModules: readonly ModuleManifest[] = [identityModule, analyticsModule];
