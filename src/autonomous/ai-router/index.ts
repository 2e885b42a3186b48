import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import type { Platform } from '../../platform/platform.ts';
import { defineModule } from '../../platform/modules/manifest.ts';
import { AI_CONFIG_SECTION, type AiConfig } from './config.ts';
import { aiRouterErrors } from './errors.ts';
import { providerErrors } from './providers/index.ts';
import { proxyErrors } from './proxy/index.ts';
import { budgetErrors } from './budgets/index.ts';
import { learningErrors } from './learning/index.ts';
import { AI_SCOPES } from './scopes.ts';
import { ConfigError } from '../../platform/config/load-config.ts';
import type { EgressPolicy } from '../../platform/net/egress.ts';
import { createConfiguredSecretResolver, isSecretError, type SecretResolver } from '../../platform/secrets/index.ts';
import { loadModelCatalog, type ModelCatalog } from './catalog.ts';
import { createTokenizer } from './tokenizer.ts';
import { createRouteDecider, type RouteDecider } from './decide.ts';
import { createBreakerGate, createChatProxyModule, type ChatProxyModule } from './proxy/index.ts';
import { CATALOG_CHANGED, createModelCatalogStore, type ModelCatalogStore } from './catalog-store.ts';
import { modelsRoutes } from './models-routes.ts';
import { unknownTaskType } from './errors.ts';
import type { Subscription } from '../../platform/bus/port.ts';
import { createAiRouterService, type AiRouterService } from './service.ts';
import { aiRouterRoutes } from './routes.ts';
import { createLearning, createModelEstimates, type LearningModelEstimates } from './learning/index.ts';
import { createBudgets, type Budgets } from './budgets/index.ts';

export { ROUTE_DECIDED } from './service.ts';
export type { RoutedDecision } from './service.ts';
export { aiRouterErrors } from './errors.ts';
export { CATALOG_CHANGED } from './catalog-store.ts';
export { learningErrors } from './learning/index.ts';
export { AI_CONFIG_SECTION, type AiConfig } from './config.ts';
export { MODELS_WRITE_SCOPE } from './scopes.ts';
export { budgetErrors, retryAfterSeconds, type BudgetGuard, type BudgetHold } from './budgets/index.ts';

export interface AiRouterModule {
  readonly service: AiRouterService;
  readonly catalog: ModelCatalogStore;
  /** Learned quality/latency per model, task and complexity (H2, learning/); one per module, fed by outcome events. */
  readonly estimates: LearningModelEstimates;
  /** Budgets and usage (H4, budgets/): `budgets.guard` reserves before a proxied call. */
  readonly budgets: Budgets;
  /** The OpenAI-compatible proxy (H3, proxy/): `proxy.routes` is mounted at `/v1`. */
  readonly proxy: ChatProxyModule;
  /** Rebuilds this replica's decider from the enabled models in the database. */
  reload(): Promise<void>;
  /** Registers `/route` and friends; mount under `/api/v1/autonomous/ai`. */
  readonly routes: FastifyPluginAsync;
  /** Seeds the catalog when the table is empty, loads it, and follows other replicas' changes. Call before serving. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The AI router (spec: "AI Router"): routing decisions, the model catalog, learning, budgets and the
 * OpenAI-compatible proxy at `/v1`. The worked example of docs/modules.md.
 */
export const aiRouterModule = defineModule({
  name: 'ai',
  service: 'autonomous',
  prefix: '/ai',
  absolutePrefixes: ['/v1'],
  description: 'AI router: routing decisions, the model catalog, learning, budgets, and the OpenAI-compatible proxy at /v1',
  scopes: AI_SCOPES,
  errors: [aiRouterErrors, providerErrors, proxyErrors, budgetErrors, learningErrors],
  config: AI_CONFIG_SECTION,
  migrations: fileURLToPath(new URL('./migrations', import.meta.url)),
  create({ platform, config, egress }) {
    const router = createAiRouterModule(platform, config, egress);
    return {
      routes: router.routes,
      // OpenAI-compatible clients expect `/v1/chat/completions` at the root, not under the service prefix.
      mounts: [{ prefix: '/v1', routes: router.proxy.routes }],
      start: () => router.start(),
      stop: () => router.stop(),
      api: router,
    };
  },
});

/**
 * Wires the AI router from the platform: the model catalog in the database (seeded from the file
 * named by `ai.catalog_file` when empty), one tokenizer (its rank table is loaded now, not on the
 * first request), and the decider, rebuilt after every catalog change here and on
 * `ai.catalog.changed` from other replicas.
 */
export function createAiRouterModule(
  platform: Platform,
  ai: AiConfig,
  egress: EgressPolicy = platform.egress.of('ai', ai.egress, 'ai.egress'),
): AiRouterModule {
  const { config } = platform;
  const providers = Object.keys(ai.providers);
  // `credentials_ref: env:NAME` names a variable of the process environment, read when an adapter is built.
  const secrets = createConfiguredSecretResolver(config, process.env);
  checkProviderCredentials(ai.providers, secrets);
  // The catalog file is the operator's, and bounded all the same: a bad reference stops the start here.
  const seed = loadModelCatalog(parseYaml(readFileSync(ai.catalog_file, 'utf8')), { providers, secrets });
  // Learning (H2): created once here, before `build`, so every decider built reads the same estimates.
  const estimates = createModelEstimates({
    priorStrength: ai.learning.prior_strength,
    halfLifeMs: ai.learning.half_life,
    clock: platform.clock,
  });
  const tokenizer = createTokenizer();
  tokenizer.warmUp();
  // Routing (H1) skips models whose breakers (model, provider, every deployment) are open.
  // The proxy's gate (H3): routing and calls read the same breakers and the same half-open trials.
  const health = createBreakerGate(platform.breakers);
  const build = (catalog: ModelCatalog | null): RouteDecider => {
    if (catalog === null)
      return {
        decide: (request) => {
          throw unknownTaskType(request.task_type, []);
        },
      };
    // The decider rejects output-token settings for task types no model serves; after an edit some may not be.
    const served = new Set(catalog.taskTypes);
    const expectedOutputTokens = Object.fromEntries(
      Object.entries(ai.expected_output_tokens).filter(([task]) => task === 'default' || served.has(task)),
    );
    return createRouteDecider({
      catalog,
      tokenizer,
      expectedOutputTokens,
      routing: ai.routing,
      tenants: ai.tenants,
      providers: ai.providers,
      estimates,
      health,
    });
  };
  let current = build(seed);
  let currentCatalog: ModelCatalog | null = seed;
  // Reloads run one after another so that an older read never replaces a newer one.
  let reloading: Promise<void> = Promise.resolve();
  const reload = (): Promise<void> =>
    (reloading = reloading
      .catch(() => undefined)
      .then(async () => {
        const catalog = await store.loadEnabled();
        current = build(catalog);
        currentCatalog = catalog;
        proxy.catalogChanged(catalog);
      }));
  // Where deployment base URLs that callers set may point (`ai.egress` when set, else the platform's
  // `egress`): checked when written (the store) and when connecting (the proxy).
  const store = createModelCatalogStore({
    db: platform.db,
    providers,
    egress,
    secrets,
    onChanged: async () => {
      platform.relay.notify();
      // The change is committed: a failed rebuild is logged (and retried on the change's event), not reported as a failed change.
      await reload().catch((error: unknown) => platform.logger.error({ err: error }, 'AI model catalog reload failed'));
    },
  });
  const decider: RouteDecider = { decide: (request, options) => current.decide(request, options) };
  const service = createAiRouterService({
    decider,
    db: platform.db,
    onEventAppended: () => platform.relay.notify(),
    retryAttempts: config.autonomous_blocks.config.error_retry_attempts,
  });
  const timeoutMs = config.autonomous_blocks.config.ai_router_timeout;
  const learning = createLearning(platform, estimates, { loadCatalog: () => store.loadEnabled(), learning: ai.learning });
  const budgets = createBudgets(platform, ai);
  const proxy = createChatProxyModule(platform, {
    catalog: () => currentCatalog,
    decider,
    tokenizer,
    budgets: budgets.guard,
    secrets,
    gate: health,
    egress,
    ai,
  });

  let subscription: Subscription | undefined;
  return {
    service,
    catalog: store,
    estimates,
    budgets,
    proxy,
    reload,
    routes: async (app) => {
      await app.register(aiRouterRoutes, { service, timeoutMs });
      await app.register(modelsRoutes, { store });
      await app.register(learning.routes);
      await app.register(budgets.routes);
    },
    async start() {
      await store.seedIfEmpty(seed.models);
      await reload();
      subscription = await platform.bus.subscribe(
        { consumer: `ai-catalog-${randomUUID().slice(0, 8)}`, subject: CATALOG_CHANGED, ephemeral: true },
        () => reload(),
      );
      await learning.start();
      await budgets.start();
    },
    async stop() {
      await proxy.stop();
      await budgets.stop();
      await learning.stop();
      await subscription?.stop();
      subscription = undefined;
    },
  };
}

/**
 * The operator's provider references are bounded by the operator's `secrets` too: one outside them
 * stops the start with the setting named, rather than failing every call later. Not read here: a key
 * may be set only where a provider is used.
 * @throws ConfigError `ai.providers.<name>.credentials_ref: <why>`
 */
function checkProviderCredentials(providers: AiConfig['providers'], secrets: SecretResolver): void {
  for (const [name, provider] of Object.entries(providers)) {
    if (provider.credentials_ref === undefined) continue;
    try {
      secrets.check(provider.credentials_ref);
    } catch (error) {
      if (!isSecretError(error)) throw error;
      throw new ConfigError(`ai.providers.${name}.credentials_ref: ${error.detail} (${error.code}; see secrets in config/default.yaml)`, {
        cause: error,
      });
    }
  }
}
