/** A client that proved who it is: what it may be granted. */
export interface AuthenticatedClient {
  readonly clientId: string;
  readonly tenant: string;
  /** Everything the client may ask for; a new client has none (least privilege). */
  readonly scopes: readonly string[];
}

/**
 * Checks an OAuth client's secret. The identity store implements it (src/core/identity); the
 * token endpoint only depends on this port. Resolves null for an unknown client, a wrong secret
 * or a disabled client alike, so the endpoint cannot tell them apart to a caller.
 */
export interface ClientAuthenticator {
  authenticate(clientId: string, secret: string): Promise<AuthenticatedClient | null>;
}
