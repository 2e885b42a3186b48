import type { Database, Queryable } from '../../platform/db/port.ts';
import { isUniqueViolation } from '../../platform/db/errors.ts';
import { appendEvent } from '../../platform/events/index.ts';
import { BlocksError } from '../../platform/errors.ts';
import { raise } from '../../platform/define-errors.ts';
import { httpErrors } from '../../platform/http/errors.ts';
import { createEgressPolicy, type EgressPolicy } from '../../platform/net/egress.ts';
import type { SecretResolver } from '../../platform/secrets/index.ts';
import { DEFAULT_CAPABILITIES, loadModelCatalog, type ModelCatalog } from './catalog.ts';
import { aiRouterErrors } from './errors.ts';
import type { Capability, Deployment, ModelSpec, QualityByComplexity } from './types.ts';

/** Subject of the event every catalog change writes; each replica rebuilds its decider on it. */
export const CATALOG_CHANGED = 'ai.catalog.changed';

/** One deployment as a caller supplies it: `provider` defaults to the model's, `weight` to 1. */
export interface DeploymentInput extends Omit<Deployment, 'provider' | 'weight'> {
  readonly provider?: string;
  readonly weight?: number;
}

/** What a caller supplies for one model: the routing fields plus operational ones. */
export interface ModelInput extends Omit<ModelSpec, 'capabilities' | 'typical_latency_ms' | 'deployments'> {
  /** Default: tools, json_mode, streaming. */
  readonly capabilities?: readonly Capability[];
  /** Typical latency of a call in milliseconds, if known. */
  readonly typical_latency_ms?: number | null;
  /** Where the model can be called; one `default` deployment on `provider` when omitted or empty. */
  readonly deployments?: readonly DeploymentInput[];
  /** Disabled models stay in the catalog but are never chosen. Default true. */
  readonly enabled?: boolean;
  /** Where the provider credentials live, e.g. `env:OPENAI_API_KEY`. Never returned by the API. */
  readonly credentials_ref?: string | null;
}

/** A deployment as the API shows it: `credentials_ref` is reduced to `has_credentials`. */
export interface DeploymentRecord extends Omit<DeploymentInput, 'credentials_ref'> {
  readonly has_credentials: boolean;
}

/** One stored model as the API shows it: `credentials_ref` is reduced to `has_credentials`. */
export interface ModelRecord extends Omit<ModelSpec, 'deployments' | 'capabilities'> {
  readonly task_types: string[];
  readonly capabilities: Capability[];
  readonly typical_latency_ms: number | null;
  /** As entered: empty when the model has the one default deployment. */
  readonly deployments: DeploymentRecord[];
  readonly enabled: boolean;
  readonly has_credentials: boolean;
  readonly version: number;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface ModelPage {
  readonly items: ModelRecord[];
  /** Pass as `cursor` for the next page; null on the last page. */
  readonly next_cursor: string | null;
}

/** Who caused a change, carried into its event. */
export interface ChangeContext {
  readonly correlationId: string;
  readonly traceparent?: string;
}

export interface ModelCatalogStore {
  /**
   * Inserts `models` if the table holds no model yet. Replicas starting together may all call it:
   * each row is inserted with ON CONFLICT DO NOTHING, so nothing is written twice.
   * @returns how many rows this call inserted.
   */
  seedIfEmpty(models: readonly ModelInput[]): Promise<number>;
  /** The enabled models as a validated catalog; null when none is enabled. */
  loadEnabled(): Promise<ModelCatalog | null>;
  /** Models ordered by id, `limit` at a time, after the model named by `cursor`. */
  list(limit: number, cursor?: string): Promise<ModelPage>;
  /** @throws BlocksError MODEL_NOT_FOUND */
  get(model: string): Promise<ModelRecord>;
  /** Validates, inserts and writes `ai.catalog.changed` in one transaction. @throws INVALID_MODEL, MODEL_EXISTS */
  create(input: ModelInput, context: ChangeContext): Promise<ModelRecord>;
  /**
   * Replaces every field of an existing model; when `expectedVersion` is given the row must still
   * have it. @throws INVALID_MODEL, MODEL_NOT_FOUND, MODEL_VERSION_MISMATCH
   */
  replace(input: ModelInput, context: ChangeContext, expectedVersion?: number): Promise<ModelRecord>;
  /** @throws BlocksError MODEL_NOT_FOUND */
  remove(model: string, context: ChangeContext): Promise<void>;
}

interface ModelRow {
  model: string;
  provider: string;
  task_types: string[];
  context_window: number;
  input_price_per_mtok: number;
  output_price_per_mtok: number;
  quality: Record<string, QualityByComplexity>;
  typical_latency_ms: number | null;
  capabilities: Capability[];
  deployments: DeploymentInput[];
  enabled: boolean;
  credentials_ref: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'model, provider, task_types, context_window, input_price_per_mtok, output_price_per_mtok, quality, ' +
  'typical_latency_ms, capabilities, deployments, enabled, credentials_ref, version, created_at, updated_at';

/**
 * The catalog's SQL. Each change and its `ai.catalog.changed` event commit together;
 * `onChanged` runs after the commit and is awaited (rebuild this replica's decider, wake the relay),
 * so a change answered to its caller is already in effect for routing in this process.
 */
export function createModelCatalogStore(options: {
  db: Database;
  onChanged: () => Promise<void>;
  /** Providers configured in `ai.providers`; a model or deployment naming another is refused. */
  providers?: readonly string[];
  /** Where a deployment's `base_url` may point (`ai.egress`); public addresses only when absent. */
  egress?: EgressPolicy;
  /** What a `credentials_ref` may name (`secrets`); checked on every create and replace. */
  secrets: Pick<SecretResolver, 'check'>;
}): ModelCatalogStore {
  const { db, onChanged } = options;
  const rules: ModelRules = { providers: options.providers, egress: options.egress ?? PUBLIC_ONLY, secrets: options.secrets };

  const changed = async (tx: Queryable, model: string, action: string, context: ChangeContext): Promise<void> => {
    await appendEvent(tx, {
      event_type: CATALOG_CHANGED,
      source_service: 'autonomous.ai-router',
      correlation_id: context.correlationId,
      traceparent: context.traceparent,
      key: 'ai-catalog',
      payload: { model, action },
    });
  };

  return {
    async seedIfEmpty(models) {
      const existing = await db.query('SELECT 1 FROM ai_models LIMIT 1');
      if (existing.rowCount > 0) return 0;
      let inserted = 0;
      await db.transaction(async (tx) => {
        for (const model of models) inserted += (await insertRow(tx, model, true)).rowCount;
      });
      return inserted;
    },

    async loadEnabled() {
      const { rows } = await db.query<ModelRow>(`SELECT ${COLUMNS} FROM ai_models WHERE enabled ORDER BY created_at, model`);
      return rows.length === 0 ? null : loadModelCatalog(rows.map(entryOf));
    },

    async list(limit, cursor) {
      const after = cursor === undefined ? null : decodeCursor(cursor);
      const { rows } = await db.query<ModelRow>(
        `SELECT ${COLUMNS} FROM ai_models WHERE $1::text IS NULL OR model > $1::text ORDER BY model LIMIT $2`,
        [after, limit + 1],
      );
      const items = rows.slice(0, limit).map(toRecord);
      const last = items.at(-1);
      return { items, next_cursor: rows.length > limit && last ? encodeCursor(last.model) : null };
    },

    async get(model) {
      const { rows } = await db.query<ModelRow>(`SELECT ${COLUMNS} FROM ai_models WHERE model = $1`, [model]);
      const row = rows[0];
      if (!row) throw modelNotFound(model);
      return toRecord(row);
    },

    async create(input, context) {
      validateModel(input, rules);
      let row: ModelRow | undefined;
      try {
        row = await db.transaction(async (tx) => {
          const inserted = (await insertRow(tx, input, false)).rows[0] as ModelRow;
          await changed(tx, input.model, 'created', context);
          return inserted;
        });
      } catch (error) {
        if (isUniqueViolation(error)) throw modelExists(input.model);
        throw error;
      }
      await onChanged();
      return toRecord(row);
    },

    async replace(input, context, expectedVersion) {
      validateModel(input, rules);
      const row = await db.transaction(async (tx) => {
        const current = await tx.query<{ version: number }>('SELECT version FROM ai_models WHERE model = $1 FOR UPDATE', [input.model]);
        const found = current.rows[0];
        if (!found) throw modelNotFound(input.model);
        if (expectedVersion !== undefined && found.version !== expectedVersion) {
          throw versionMismatch(input.model, expectedVersion, found.version);
        }
        const updated = await tx.query<ModelRow>(
          `UPDATE ai_models SET provider = $2, task_types = $3, context_window = $4, input_price_per_mtok = $5,
             output_price_per_mtok = $6, quality = $7, typical_latency_ms = $8, enabled = $9, credentials_ref = $10,
             capabilities = $11, deployments = $12, version = version + 1, updated_at = now()
           WHERE model = $1 RETURNING ${COLUMNS}`,
          valuesOf(input),
        );
        await changed(tx, input.model, 'replaced', context);
        return updated.rows[0] as ModelRow;
      });
      await onChanged();
      return toRecord(row);
    },

    async remove(model, context) {
      await db.transaction(async (tx) => {
        const deleted = await tx.query('DELETE FROM ai_models WHERE model = $1', [model]);
        if (deleted.rowCount === 0) throw modelNotFound(model);
        await changed(tx, model, 'deleted', context);
      });
      await onChanged();
    },
  };
}

const valuesOf = (input: ModelInput): unknown[] => [
  input.model,
  input.provider,
  [...input.task_types],
  input.context_window,
  input.input_price_per_mtok,
  input.output_price_per_mtok,
  JSON.stringify(input.quality),
  input.typical_latency_ms ?? null,
  input.enabled ?? true,
  input.credentials_ref ?? null,
  [...(input.capabilities ?? DEFAULT_CAPABILITIES)],
  JSON.stringify(input.deployments ?? []),
];

function insertRow(tx: Queryable, input: ModelInput, ignoreExisting: boolean) {
  return tx.query<ModelRow>(
    `INSERT INTO ai_models (model, provider, task_types, context_window, input_price_per_mtok, output_price_per_mtok,
       quality, typical_latency_ms, enabled, credentials_ref, capabilities, deployments)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ${ignoreExisting ? 'ON CONFLICT (model) DO NOTHING' : ''} RETURNING ${COLUMNS}`,
    valuesOf(input),
  );
}

/** The egress policy of a store given none: callers' URLs reach public addresses only. */
const PUBLIC_ONLY = createEgressPolicy({ allow_private: false, allow: [] });

/** What a model written through the API is checked against. */
export interface ModelRules {
  /** Providers configured in `ai.providers`. */
  readonly providers?: readonly string[] | undefined;
  readonly egress: EgressPolicy;
  readonly secrets: Pick<SecretResolver, 'check'>;
}

/**
 * The cross-field checks of config/models.yaml (quality for exactly the declared task types, each
 * 0..1, non-negative prices, `credentials_ref`s within the `secrets` bounds…) applied to one API
 * input, so the API and the config share one validator; then the egress check of every
 * deployment's `base_url` (OWASP API7: a caller must not point the proxy at loopback, the metadata
 * service or the internal network).
 * @throws BlocksError INVALID_MODEL (400) naming the bad field; nothing is stored.
 */
export function validateModel(input: ModelInput, rules: ModelRules): void {
  const { providers, egress, secrets } = rules;
  const { enabled: _enabled, ...spec } = input;
  try {
    loadModelCatalog([spec], { providers, secrets });
  } catch (error) {
    if (!(error instanceof BlocksError) || error.code !== 'INVALID_ROUTER_CONFIG') throw error;
    const path = String(error.extensions.path).replace(/^models\[0\](?: \([^)]*\))?\.?/, '');
    throw invalidModel(input.model, path, error.detail.split(': ').slice(1).join(': '));
  }
  (input.deployments ?? []).forEach((deployment, i) => {
    const refusal = deployment.base_url === undefined ? null : egress.checkUrl(deployment.base_url);
    if (refusal !== null) throw invalidModel(input.model, `deployments[${i}].base_url`, refusal);
  });
}

const invalidModel = (model: string, field: string, problem: string): BlocksError =>
  new BlocksError('INVALID_MODEL', aiRouterErrors.INVALID_MODEL.status, `Invalid model '${model}': ${field}: ${problem}`, {
    extensions: { field },
  });

/** A row in the shape loadModelCatalog reads (what was entered, before defaults). */
const entryOf = (row: ModelRow): Omit<ModelInput, 'enabled'> => ({
  provider: row.provider,
  model: row.model,
  task_types: row.task_types,
  context_window: row.context_window,
  input_price_per_mtok: row.input_price_per_mtok,
  output_price_per_mtok: row.output_price_per_mtok,
  quality: row.quality,
  capabilities: row.capabilities,
  typical_latency_ms: row.typical_latency_ms,
  deployments: row.deployments,
  credentials_ref: row.credentials_ref,
});

const hasCredentials = (ref: string | null | undefined): boolean => ref !== null && ref !== undefined && ref !== '';

const toRecord = (row: ModelRow): ModelRecord => {
  // Types narrowed by entryOf are widened again for the answer; references become has_credentials.
  const { credentials_ref: modelRef, ...entry } = entryOf(row);
  return {
    ...entry,
    task_types: row.task_types,
    capabilities: row.capabilities,
    typical_latency_ms: row.typical_latency_ms,
    deployments: row.deployments.map(({ credentials_ref: ref, ...deployment }) => ({
      ...deployment,
      has_credentials: hasCredentials(ref),
    })),
    enabled: row.enabled,
    has_credentials: hasCredentials(modelRef),
    version: row.version,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
};

const encodeCursor = (model: string): string => Buffer.from(model, 'utf8').toString('base64url');

function decodeCursor(cursor: string): string {
  const model = Buffer.from(cursor, 'base64url').toString('utf8');
  // A control character (NUL above all, which PostgreSQL text cannot hold) is no model id: a 400, not a failed query.
  // eslint-disable-next-line no-control-regex
  if (model === '' || encodeCursor(model) !== cursor || /[\u0000-\u001f\u007f]/.test(model)) {
    throw raise(httpErrors, 'INVALID_CURSOR', `Cursor '${cursor}' was not issued by this list`);
  }
  return model;
}

const modelNotFound = (model: string): BlocksError =>
  new BlocksError('MODEL_NOT_FOUND', aiRouterErrors.MODEL_NOT_FOUND.status, `No model '${model}' in the catalog`, {
    extensions: { model },
  });

const modelExists = (model: string): BlocksError =>
  new BlocksError('MODEL_EXISTS', aiRouterErrors.MODEL_EXISTS.status, `Model '${model}' is already in the catalog; PUT replaces it`, {
    extensions: { model },
  });

const versionMismatch = (model: string, expected: number, actual: number): BlocksError =>
  new BlocksError(
    'MODEL_VERSION_MISMATCH',
    aiRouterErrors.MODEL_VERSION_MISMATCH.status,
    `Model '${model}' is at version ${actual}, not ${expected}: read it again and reapply the change`,
    { extensions: { model, expected_version: expected, current_version: actual } },
  );
