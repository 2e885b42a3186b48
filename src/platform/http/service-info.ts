import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';

export interface ServiceInfoOptions {
  readonly service: string;
  readonly version: string;
  readonly modules: readonly string[];
  /** The effective tuning values from configuration, so operators can see what a replica runs with. */
  readonly settings: Readonly<Record<string, number | string | boolean>>;
}

/** `GET <service prefix>`: which service answers, its version, modules and effective settings. */
export const serviceInfoRoute: FastifyPluginAsync<ServiceInfoOptions> = async (app, options) => {
  const body = { service: options.service, version: options.version, modules: [...options.modules], settings: { ...options.settings } };
  app.get(
    // '' rather than '/': the service's own prefix, without a trailing slash, is the one documented path.
    '',
    {
      config: { scope: 'service:read' },
      schema: {
        summary: `Describe the ${options.service} service and its effective settings`,
        tags: [options.service],
        response: {
          200: Type.Object({
            service: Type.String(),
            version: Type.String(),
            modules: Type.Array(Type.String()),
            settings: Type.Record(Type.String(), Type.Union([Type.Number(), Type.String(), Type.Boolean()])),
          }),
        },
      },
    },
    async () => body,
  );
};
