import type { ModuleManifest } from '../platform/modules/manifest.ts';
import { aiRouterModule } from './ai-router/index.ts';

/** The autonomous service's modules (port 8001): one line each. Errors, performance and security follow. */
export const autonomousModules: readonly ModuleManifest[] = [aiRouterModule];
