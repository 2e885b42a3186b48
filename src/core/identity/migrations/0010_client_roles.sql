-- OAuth clients carry roles as users do, and hold what their roles grant besides their own scopes:
-- a client Blocks makes for an admin gets a module's scopes when the module lands, by rule, rather
-- than keeping whatever was known when it was created. `platform` is the operator's role (every
-- scope, operator scopes included); `admin` is a tenant's.
ALTER TABLE oauth_clients ADD COLUMN IF NOT EXISTS roles text[] NOT NULL DEFAULT '{}';

-- The clients Blocks made before roles existed: the first-start client (the earliest client of
-- the default tenant with that name, holding every scope known then) and each tenant's admin
-- client (holding every tenant scope known then). A client someone else named alike holds less
-- and stays as it is.
UPDATE oauth_clients SET roles = '{platform}'
 WHERE client_id = (SELECT client_id FROM oauth_clients
                     WHERE tenant = 'default' AND name = 'admin (created on first start)'
                     ORDER BY created_at, client_id LIMIT 1)
   AND scopes @> ARRAY['ai:budgets', 'ai:feedback', 'ai:invoke', 'ai:models:read', 'ai:models:write', 'ai:read', 'ai:route',
                       'docs:read', 'identity:admin', 'metrics:read', 'service:read', 'tenants:admin'];
UPDATE oauth_clients SET roles = '{admin}'
 WHERE name = 'admin (created with the tenant)' AND roles = '{}'
   AND scopes @> ARRAY['ai:budgets', 'ai:feedback', 'ai:invoke', 'ai:models:read', 'ai:read', 'ai:route',
                       'docs:read', 'identity:admin', 'metrics:read', 'service:read'];
