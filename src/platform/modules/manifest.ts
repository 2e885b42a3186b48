import type { FastifyPluginAsync } from 'fastify';
import type { Static, TSchema } from 'typebox';
import type { Platform } from '../platform.ts';
import type { ErrorCatalogue } from '../define-errors.ts';
import type { DependencyCheck } from '../http/health.ts';
import type { Delivery, SubscribeOptions } from '../bus/port.ts';
import type { ModuleRegistry } from './registry.ts';
import type { AutonomousClient } from '../clients/autonomous-client.ts';
import type { EgressPolicy } from '../net/egress.ts';
import type { ContentTypeParser } from '../http/content-types.ts';

/** The cross-service client ports a module may use. */
export interface ServiceClients {
  /** The autonomous service (AI routing and completions), for the collaborative one. */
  readonly autonomous: AutonomousClient;
}

/**
 * Where a module runs. `gateway`, `autonomous` and `collaborative` are the processes of
 * ARCHITECTURE.md; `core` modules (identity, analytics) run in every process, because every
 * process decides access itself, and their HTTP API is served by the gateway.
 */
export type ServiceName = 'gateway' | 'autonomous' | 'collaborative' | 'core';

/** A process of a deployment: `blocks start <role>`; `blocks start` runs all three. */
export type ProcessRole = 'gateway' | 'autonomous' | 'collaborative';

/** Roles a tenant's users (and OAuth clients) are given; `admin` carries every tenant scope by rule. */
export type RoleName = 'viewer' | 'developer' | 'operator' | 'admin';

export interface ScopeDefinition {
  /** `<module>:<action>` by convention (`ai:route`, `workflows:write`). */
  readonly name: string;
  /** One line for the docs and the OAuth metadata. */
  readonly description: string;
  /**
   * Roles that carry it, besides `admin`, which carries every scope that is not `operator`: so a
   * module that lands gives its scopes to each tenant's admins without touching what was stored.
   */
  readonly roles?: readonly Exclude<RoleName, 'admin'>[];
  /**
   * The scope reaches beyond one tenant (tenants themselves, the global model catalog). No role
   * carries it; only the platform operator's client holds it, by rule, and whoever it grants it to.
   */
  readonly operator?: boolean;
}

/** A module's section of the configuration: `<key>:` in YAML, validated against `schema`. */
export interface ConfigSection<Schema extends TSchema = TSchema> {
  readonly key: string;
  readonly schema: Schema;
  /** Every key of the section; the YAML files and the environment are merged over them. */
  readonly defaults: Static<Schema>;
}

/** A durable consumer the kernel subscribes after the module started and stops before it stops. */
export interface ConsumerDefinition {
  readonly options: SubscribeOptions;
  handle(delivery: Delivery): Promise<void>;
}

/** Routes registered under a path prefix. */
export interface Mount {
  readonly prefix: string;
  readonly routes: FastifyPluginAsync;
}

/** What `create` gives the kernel: everything optional, so a module says only what it has. */
export interface ModuleInstance<Api = unknown> {
  /** Mounted at the service's prefix plus the manifest's `prefix`. */
  readonly routes?: FastifyPluginAsync;
  /**
   * Route trees served outside the module's prefix, at absolute paths (the OpenAI-compatible
   * `/v1`, the authorization server's `/oauth/*`), wherever the module's routes are served.
   */
  readonly mounts?: readonly Mount[];
  readonly consumers?: readonly ConsumerDefinition[];
  /** Added to `/health` of the processes that serve the module's routes. */
  readonly checks?: readonly DependencyCheck[];
  /** Effective settings shown by the service's info route (`GET /api/v1/<service>`). */
  readonly settings?: Readonly<Record<string, number | string | boolean>>;
  /**
   * Bodies the module's routes (and mounts) accept besides JSON (src/platform/http/content-types.ts:
   * `yamlContentType()`, `cloudEventsContentType()`). Registered inside the module's own plugin, so
   * every other route still answers 415 to them.
   */
  readonly contentTypes?: readonly ContentTypeParser[];
  /** Seeds and warms up; runs before any port opens, after the modules it depends on started. */
  start?(): Promise<void>;
  /** Runs after the ports closed, before the modules it depends on stop. */
  stop?(): Promise<void>;
  /** What modules that declare a dependency on this one may use (`context.use(name)`). */
  readonly api?: Api;
}

/** What a module is handed when it is created. */
export interface ModuleContext<Config = unknown> {
  readonly platform: Platform;
  /** The module's own configuration section, validated. */
  readonly config: Config;
  /** Which processes this one runs (`blocks start gateway` runs one; `blocks start` all three). */
  readonly roles: readonly ProcessRole[];
  /** Every registered module (scopes, prefixes): what identity grants and what the gateway routes. */
  readonly registry: ModuleRegistry;
  /**
   * Where URLs that callers set may point, for this module: the platform's `egress`, or the
   * module's own when its section carries an `egress` (which then replaces the platform's for it).
   * Check a URL when it is written (`checkUrl`) and fetch it through `dispatcher`.
   */
  readonly egress: EgressPolicy;
  /**
   * Where a process is reached: its own listening URL once it listens, else `services.<role>.url`,
   * else the default port on this machine. Ask when needed, not at creation (ports open later).
   */
  publicUrl(role: ProcessRole): string;
  /** The other services, called for a caller (never more than that caller may do), in this process or over the network. */
  readonly clients: ServiceClients;
  /**
   * The `api` of a module this one declared in `dependsOn` (created before it), typed by its manifest.
   * @throws Error for a module not declared, so every dependency is visible in the manifest
   */
  use<Api>(manifest: ModuleManifest<never, Api>): Api;
}

/**
 * A capability, as every `src/<service>/<module>/index.ts` exports it. The registry derives from
 * manifests, and only from them: known scopes and role bundles, the error catalogues of the docs,
 * the configuration schema, each service's module list and prefixes, migrations, OpenAPI tags,
 * and the start and stop order.
 */
export interface ModuleManifest<Config = unknown, Api = unknown> {
  /** Unique; also the OpenAPI tag of its routes and the module's name in the service info. */
  readonly name: string;
  readonly service: ServiceName;
  /** Under the service's prefix (`/ai` → `/api/v1/autonomous/ai`; a core module's under `/api/v1`). */
  readonly prefix?: string;
  /**
   * Absolute path prefixes the module's `mounts` serve (`/v1`): a gateway that does not run the
   * module's service forwards them to it, so they are declared here, not discovered at creation.
   */
  readonly absolutePrefixes?: readonly string[];
  /** The OpenAPI tag's description. */
  readonly description: string;
  readonly scopes?: readonly ScopeDefinition[];
  readonly errors?: readonly ErrorCatalogue[];
  /** Where the codes of `errors` are documented, each catalogue under a heading naming its file: docs/errors.md when absent. */
  readonly errorsDoc?: string;
  readonly config?: ConfigSection;
  /** A folder of `NNNN_name.sql` files: applied in order, after those of the modules this one depends on. */
  readonly migrations?: string;
  /** Modules created, migrated and started before this one, and stopped after it. */
  readonly dependsOn?: readonly string[];
  create(context: ModuleContext<Config>): ModuleInstance<Api>;
}

/**
 * Declares a manifest with its configuration typed from its section's schema: `context.config`
 * is `Static<schema>` without a cast.
 */
export function defineModule<Schema extends TSchema, Api = unknown>(
  manifest: Omit<ModuleManifest<Static<Schema>, Api>, 'config'> & { readonly config: ConfigSection<Schema> },
): ModuleManifest<Static<Schema>, Api>;
export function defineModule<Api = unknown>(manifest: Omit<ModuleManifest<undefined, Api>, 'config'>): ModuleManifest<undefined, Api>;
export function defineModule(manifest: ModuleManifest): ModuleManifest {
  return manifest;
}
