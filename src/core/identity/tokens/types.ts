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

/** A user (resource owner) as the password and refresh grants see it. */
export interface ResourceOwner {
  readonly userId: string;
  readonly tenant: string;
  /** The scopes of the user's roles now; none without a role (least privilege). */
  readonly scopes: readonly string[];
}

/**
 * Checks users' passwords and looks users up again on refresh. The identity store implements it
 * (src/core/identity/users.ts); the token endpoint only depends on this port.
 */
export interface UserAuthenticator {
  /**
   * The user of `tenant` whose email is `username`, when `password` is theirs; null for an unknown
   * user or a wrong password alike, after the same argon2id work, so neither answer nor timing
   * tells which emails exist.
   */
  authenticate(tenant: string, username: string, password: string): Promise<ResourceOwner | null>;
  /** The user as they are now (roles may have changed since the grant), or null once deleted. */
  find(tenant: string, userId: string): Promise<ResourceOwner | null>;
}
