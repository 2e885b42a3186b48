export { idempotencyErrors, type IdempotencyErrorCode } from './errors.ts';
export {
  createIdempotencyStore,
  type IdempotencyClaim,
  type IdempotencyScope,
  type IdempotencyStore,
  type IdempotencyStoreOptions,
  type StoredAnswer,
} from './store.ts';
export {
  IDEMPOTENCY_HEADER,
  MAX_KEY_LENGTH,
  REPLAYED_HEADER,
  idempotencyPlugin,
  storedAnswerOf,
  type IdempotencyPluginOptions,
} from './plugin.ts';
export { createIdempotencySweep, type IdempotencySweep } from './sweep.ts';
