import type { FastifyPluginAsync } from 'fastify';

/**
 * A module's routes, each tagged with the module's name in the OpenAPI document unless the route
 * names its own tags: the document's sections follow the registry without every route repeating it.
 */
export const taggedRoutes =
  (tag: string, routes: FastifyPluginAsync): FastifyPluginAsync =>
  async (app) => {
    app.addHook('onRoute', (route) => {
      if (route.schema?.tags === undefined) route.schema = { ...route.schema, tags: [tag] };
    });
    await app.register(routes);
  };
