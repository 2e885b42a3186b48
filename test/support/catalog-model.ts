/**
 * A catalog model entry as `config/models.yaml` and the model routes take it: a chat model of
 * provider `fake` at 1 and 2 USD per million tokens, good at every complexity. `fields` replace or
 * add to it (another provider, capabilities).
 */
export const catalogModel = (model: string, fields: Record<string, unknown> = {}) => ({
  provider: 'fake',
  model,
  task_types: ['chat'],
  context_window: 100_000,
  input_price_per_mtok: 1,
  output_price_per_mtok: 2,
  quality: { chat: { low: 0.9, medium: 0.9, high: 0.9 } },
  typical_latency_ms: 100,
  ...fields,
});
