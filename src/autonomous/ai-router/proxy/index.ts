import type { FastifyPluginAsync } from 'fastify';
import type { EgressPolicy } from '../../../platform/net/egress.ts';
import type { Platform } from '../../../platform/platform.ts';
import type { AiConfig } from '../config.ts';
import type { SecretResolver } from '../../../platform/secrets/index.ts';
import type { BudgetGuard } from '../budgets/budget-guard.ts';
import type { ModelCatalog } from '../catalog.ts';
import type { Tokenizer } from '../tokenizer.ts';
import { createBalancer } from './balancer.ts';
import { createCallEvents } from './call-events.ts';
import { createChatProxy, type ChatProxy } from './chat-proxy.ts';
import { createRecordGate } from './record-gate.ts';
import { createDeploymentDirectory } from './deployments.ts';
import { createBreakerGate, type BreakerGate } from './model-health.ts';
import type { RankingDecider } from './plan.ts';
import { createProxyMetrics } from './proxy-metrics.ts';
import { createResponseCache } from './response-cache.ts';
import { openAiRoutes } from './routes.ts';

export { REQUEST_COMPLETED, REQUEST_FAILED } from './call-events.ts';
export type { AttemptRecord, CallPayload } from './call-events.ts';
export { proxyErrors } from './errors.ts';
export { createBreakerGate, createBreakerModelHealth, deploymentBreaker, modelBreaker, providerBreaker } from './model-health.ts';
export type { BreakerGate, ModelHealth } from './model-health.ts';
export type { ChatProxy } from './chat-proxy.ts';

/** A budget guard for callers under no budget: holds nothing, costs nothing. */
export const NO_BUDGETS: BudgetGuard = Object.freeze({
  reserve: () => Promise.resolve(Object.freeze({ settle: () => Promise.resolve(), release: () => Promise.resolve() })),
});

export interface ChatProxyModule {
  readonly proxy: ChatProxy;
  /** Breaker health for the decider: the same gate the proxy calls through. */
  readonly health: BreakerGate;
  /** `/chat/completions` and `/models`; mount at `/v1`. */
  readonly routes: FastifyPluginAsync;
  /** Drops provider adapters of deployments no longer in the catalog; call after every reload. */
  catalogChanged(catalog: ModelCatalog | null): void;
  /** Waits for call events still being written. */
  stop(): Promise<void>;
}

export interface ChatProxyModuleOptions {
  /** The router's configuration section (`ai:`). */
  readonly ai: AiConfig;
  readonly catalog: () => ModelCatalog | null;
  readonly decider: RankingDecider;
  readonly tokenizer: Pick<Tokenizer, 'countPromptTokens' | 'countTokens'>;
  readonly budgets?: BudgetGuard;
  /** Reads `credentials_ref`s within the operator's `secrets` bounds. */
  readonly secrets: SecretResolver;
  /** Shared with the decider so routing and calls agree on health; one is made when omitted. */
  readonly gate?: BreakerGate;
  /** Checks connections to deployment base URLs callers set (`ai.egress`); unchecked when omitted. */
  readonly egress?: EgressPolicy;
}

/** Wires the OpenAI-compatible proxy from the platform. */
export function createChatProxyModule(platform: Platform, options: ChatProxyModuleOptions): ChatProxyModule {
  const gate = options.gate ?? createBreakerGate(platform.breakers);
  const directory = createDeploymentDirectory({
    providers: options.ai.providers,
    attemptTimeoutMs: options.ai.proxy.attempt_timeout,
    secrets: options.secrets,
    logger: platform.logger,
    ...(options.egress === undefined ? {} : { egress: options.egress }),
  });
  const events = createCallEvents({
    db: platform.db,
    idempotency: platform.idempotency,
    onAppended: () => platform.relay.notify(),
    retryWithinMs: options.ai.proxy.record_wait,
    clock: platform.clock,
  });
  const proxy = createChatProxy({
    ai: options.ai,
    catalog: options.catalog,
    decider: options.decider,
    tokenizer: options.tokenizer,
    directory,
    balancer: createBalancer(),
    gate,
    budgets: options.budgets ?? NO_BUDGETS,
    cache: createResponseCache(platform.cache),
    events,
    records: createRecordGate({ db: platform.db, clock: platform.clock }),
    metrics: createProxyMetrics(platform.metrics, { catalog: options.catalog }),
    logger: platform.logger,
  });
  return {
    proxy,
    health: gate,
    routes: async (app) => {
      await app.register(openAiRoutes, { proxy });
    },
    catalogChanged(catalog) {
      directory.retain(catalog?.models ?? []);
    },
    stop: () => events.drain(),
  };
}
