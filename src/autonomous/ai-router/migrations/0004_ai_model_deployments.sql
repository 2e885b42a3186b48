-- What a model can do (a request may require some) and where it can be called. `deployments` is
-- the list as entered; an empty list means one deployment on the model's provider. Credentials in
-- it are references (env:NAME, file:/path), never keys, and are never returned by the API.
ALTER TABLE ai_models ADD COLUMN IF NOT EXISTS capabilities text[] NOT NULL DEFAULT '{tools,json_mode,streaming}';
ALTER TABLE ai_models ADD COLUMN IF NOT EXISTS deployments jsonb NOT NULL DEFAULT '[]';
