import { Type } from 'typebox';
import { defineModule } from '../../../src/platform/modules/manifest.ts';
import type { EgressPolicy } from '../../../src/platform/net/egress.ts';
import { EgressOverride } from '../../../src/platform/net/egress-policies.ts';
import { cloudEventsContentType, yamlContentType } from '../../../src/platform/http/content-types.ts';

const IntakeConfig = Type.Object(
  {
    /** This module's own egress policy, replacing the platform's for it. */
    egress: Type.Optional(EgressOverride),
  },
  { additionalProperties: false },
);

/** Smallest body `/small` takes, whatever its type: its route's own `bodyLimit`. */
export const SMALL_ROUTE_LIMIT = 256;

export interface IntakeApi {
  /** The egress policy the kernel handed the module (`context.egress`). */
  readonly egress: EgressPolicy;
}

/**
 * A test module that takes YAML and structured CloudEvents besides JSON, as a workflow or protocol
 * module will: `POST /documents` echoes what it parsed, `POST /small` does the same under a
 * 256-byte limit of its own, `POST /events` takes one CloudEvent. Its config section may carry an
 * `egress` override; its api shows the policy the kernel gave it. Not in test/support/registry.ts:
 * tests that need it build a registry with it.
 */
export const intakeModule = defineModule<typeof IntakeConfig, IntakeApi>({
  name: 'intake',
  service: 'collaborative',
  prefix: '/intake',
  description: 'A test module taking YAML and CloudEvents bodies',
  scopes: [{ name: 'intake:write', description: 'Send documents', roles: ['developer'] }],
  config: { key: 'intake', schema: IntakeConfig, defaults: {} },
  create({ egress }) {
    const Document = Type.Object({ name: Type.String({ minLength: 1 }) }, { additionalProperties: true });
    const echo = { config: { scope: 'intake:write' }, schema: { body: Document, summary: 'Echo a parsed document' } } as const;
    return {
      contentTypes: [yamlContentType({ maxDepth: 16, maxAliases: 5 }), cloudEventsContentType({ maxDepth: 16 })],
      routes: async (app) => {
        app.post('/documents', echo, async (request) => ({ parsed: request.body }));
        app.post('/small', { ...echo, bodyLimit: SMALL_ROUTE_LIMIT }, async (request) => ({ parsed: request.body }));
        app.post(
          '/events',
          {
            config: { scope: 'intake:write' },
            schema: { body: Type.Object({ type: Type.String(), data: Type.Optional(Type.Unknown()) }), summary: 'Take one CloudEvent' },
          },
          async (request) => ({ type: (request.body as { type: string }).type }),
        );
      },
      api: { egress },
    };
  },
});
