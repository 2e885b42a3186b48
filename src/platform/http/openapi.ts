import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** OpenAPI 3.1 generated from the route schemas: the page at /docs, the document at /docs/json. */
export const swaggerPlugins = fp(async (app: FastifyInstance, options: { title: string; version: string }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: options.title, version: options.version, description: 'Blocks API. Errors are RFC 9457 problem+json.' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
});
