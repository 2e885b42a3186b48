export type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatContentPart,
  ChatMessage,
  ChatTool,
  ChatToolCall,
  ChatToolCallDelta,
  ChatToolChoice,
  ChatUsage,
  FinishReason,
  ProviderAdapter,
  ProviderCallOptions,
} from './types.ts';
export { ProviderError, isProviderError, parseRetryAfter, providerErrors } from './errors.ts';
export type { ProviderErrorCode, ProviderErrorKind } from './errors.ts';
export { createOpenAiCompatibleAdapter } from './openai-compatible.ts';
export type { OpenAiCompatibleOptions } from './openai-compatible.ts';
export { createAnthropicAdapter } from './anthropic.ts';
export type { AnthropicOptions } from './anthropic.ts';
