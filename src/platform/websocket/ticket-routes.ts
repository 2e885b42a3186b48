import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { BlocksError } from '../errors.ts';
import { httpErrors } from '../http/errors.ts';
import { ProblemSchema } from '../http/schemas.ts';
import type { WebSocketTickets } from './tickets.ts';

export interface TicketRoutesOptions {
  readonly tickets: WebSocketTickets;
  /** The scope a caller needs to get a ticket: the one the WebSocket routes it is for declare. */
  readonly scope: string;
  /** OpenAPI tags of the route. */
  readonly tags?: readonly string[];
}

const TicketAnswer = Type.Object({
  ticket: Type.String({ description: 'Pass as `?ticket=` on the WebSocket URL, once' }),
  expires_at: Type.String({ format: 'date-time' }),
  scopes: Type.Array(Type.String(), { description: 'What a connection opened with it may do' }),
});

/**
 * `POST <prefix>/ws-tickets`: a short-lived, single-use ticket for a WebSocket upgrade, for clients
 * (browsers) that can set neither an `Authorization` header nor a subprotocol. Mounted by the
 * module whose WebSocket routes it serves, under its prefix and with their scope. The ticket
 * carries the caller's tenant and its scopes, or fewer (`scopes`), never more.
 */
export const webSocketTicketRoutes: FastifyPluginAsyncTypebox<TicketRoutesOptions> = async (app, options) => {
  const { tickets, scope } = options;
  app.post(
    '/ws-tickets',
    {
      // A retry should get a new ticket, not the answer of the first request again (a ticket opens one connection).
      config: { scope, idempotency: false },
      schema: {
        summary: 'Get a single-use ticket to open a WebSocket with (?ticket=), valid for http.websocket.ticket_ttl',
        tags: [...(options.tags ?? ['websocket'])],
        body: Type.Object(
          {
            scopes: Type.Optional(
              Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
                maxItems: 64,
                description: "The ticket's scopes; the caller's own when absent. Each must be one the caller holds",
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: TicketAnswer, 403: ProblemSchema },
      },
    },
    async (request, reply) => {
      const wanted = request.body.scopes;
      const missing = wanted?.find((name) => !request.caller.scopes.includes(name));
      if (missing !== undefined) {
        throw new BlocksError(
          'INSUFFICIENT_SCOPE',
          httpErrors.INSUFFICIENT_SCOPE.status,
          `A ticket cannot carry ${missing}: the caller lacks it.`,
          {
            extensions: { scope: missing },
          },
        );
      }
      const issued = await tickets.issue(request.caller, wanted);
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ ticket: issued.ticket, expires_at: issued.expiresAt.toISOString(), scopes: [...issued.scopes] });
    },
  );
};
