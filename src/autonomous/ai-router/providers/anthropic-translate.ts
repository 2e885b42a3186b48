import { ProviderError } from './errors.ts';
import type {
  ChatCompletion,
  ChatCompletionRequest,
  ChatContentPart,
  ChatMessage,
  ChatToolCall,
  ChatToolChoice,
  FinishReason,
} from './types.ts';

/** The parts of an Anthropic Messages request this translation writes. */
export interface AnthropicRequest {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string;
  tools?: { name: string; description?: string; input_schema: Readonly<Record<string, unknown>> }[];
  tool_choice?: { type: 'auto' | 'any' | 'none' } | { type: 'tool'; name: string };
  temperature?: number;
  stream?: boolean;
}

type AnthropicBlock =
  | { type: 'text'; text: string }
  | { type: 'image'; source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string } }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string };

interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: AnthropicBlock[];
}

const textOf = (content: string | readonly ChatContentPart[] | null): string =>
  content === null ? '' : typeof content === 'string' ? content : content.map((part) => (part.type === 'text' ? part.text : '')).join('');

// data:<media type>;base64,<data> — what OpenAI clients send for an inline image.
const DATA_URL = /^data:(image\/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)$/i;

/** An OpenAI image part as an Anthropic image block: inline data stays inline, a web URL is passed by reference. */
function imageBlockOf(url: string): AnthropicBlock {
  const inline = DATA_URL.exec(url);
  if (inline !== null)
    return { type: 'image', source: { type: 'base64', media_type: (inline[1] as string).toLowerCase(), data: inline[2] as string } };
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw new ProviderError('client', 'an image must be an http(s) URL or a base64 data: URL of an image', { provider: 'anthropic' });
}

/**
 * The Anthropic Messages request for a canonical one: system messages become `system`, tool
 * results become `tool_result` blocks in a user turn, assistant tool calls become `tool_use`
 * blocks, and consecutive turns of one role merge (Anthropic wants user and assistant to
 * alternate). Throws `ProviderError` 'client' when a tool call's arguments are not JSON.
 */
export function toAnthropicRequest(request: ChatCompletionRequest, defaultMaxTokens: number): AnthropicRequest {
  const system = request.messages.filter((message) => message.role === 'system').map((message) => textOf(message.content));
  const messages: AnthropicMessage[] = [];
  for (const message of request.messages) {
    if (message.role === 'system') continue;
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks = blocksOf(message);
    const last = messages.at(-1);
    if (last !== undefined && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  }
  const out: AnthropicRequest = { model: request.model, max_tokens: request.max_tokens ?? defaultMaxTokens, messages };
  if (system.length > 0) out.system = system.join('\n\n');
  if (request.tools !== undefined && request.tools.length > 0) {
    out.tools = request.tools.map((tool) => ({
      name: tool.function.name,
      ...(tool.function.description === undefined ? {} : { description: tool.function.description }),
      input_schema: tool.function.parameters ?? { type: 'object', properties: {} },
    }));
  }
  if (request.tool_choice !== undefined) out.tool_choice = toolChoiceOf(request.tool_choice);
  if (request.temperature !== undefined) out.temperature = request.temperature;
  return out;
}

function blocksOf(message: Exclude<ChatMessage, { role: 'system' }>): AnthropicBlock[] {
  if (message.role === 'tool') return [{ type: 'tool_result', tool_use_id: message.tool_call_id, content: textOf(message.content) }];
  if (message.role === 'user' && typeof message.content !== 'string') {
    // Parts keep their order: a question about an image usually refers to the image before it.
    return message.content.flatMap((part): AnthropicBlock[] =>
      part.type === 'text' ? (part.text === '' ? [] : [{ type: 'text', text: part.text }]) : [imageBlockOf(part.image_url.url)],
    );
  }
  const text = textOf(message.content);
  const blocks: AnthropicBlock[] = text === '' ? [] : [{ type: 'text', text }];
  if (message.role === 'assistant') {
    for (const call of message.tool_calls ?? []) {
      blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: parseArguments(call) });
    }
  }
  return blocks;
}

function parseArguments(call: ChatToolCall): unknown {
  if (call.function.arguments.trim() === '') return {};
  try {
    return JSON.parse(call.function.arguments) as unknown;
  } catch (error) {
    throw new ProviderError('client', `tool call ${call.id} has arguments that are not JSON`, { provider: 'anthropic', cause: error });
  }
}

function toolChoiceOf(choice: ChatToolChoice): NonNullable<AnthropicRequest['tool_choice']> {
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'required') return { type: 'any' };
  if (choice === 'none') return { type: 'none' };
  return { type: 'tool', name: choice.function.name };
}

/** Anthropic's stop_reason as OpenAI's finish_reason. */
export function finishReasonOf(stopReason: unknown): FinishReason | null {
  switch (stopReason) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return null;
  }
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A token count as Anthropic reports it: 0 when absent, a 'bad_response' when it is anything but a
 * non-negative integer, so a provider cannot lower (or poison) what a call is charged.
 */
export function count(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProviderError('bad_response', 'anthropic sent a token count that is not a non-negative integer', { provider: 'anthropic' });
  }
  return value;
}

/** Prompt tokens as Anthropic counts them: cache writes and reads are prompt tokens too. */
export const promptTokensOf = (usage: Record<string, unknown>): number =>
  count(usage['input_tokens']) + count(usage['cache_creation_input_tokens']) + count(usage['cache_read_input_tokens']);

/**
 * The canonical completion for an Anthropic Messages answer. Throws `ProviderError`
 * 'bad_response' when the body is not a message with a content array and usage.
 */
export function fromAnthropicResponse(body: unknown): ChatCompletion {
  if (!isRecord(body) || !Array.isArray(body['content']) || !isRecord(body['usage'])) {
    throw new ProviderError('bad_response', 'anthropic sent a message without content[] and usage', { provider: 'anthropic' });
  }
  let text = '';
  const toolCalls: ChatToolCall[] = [];
  for (const block of body['content'] as unknown[]) {
    if (!isRecord(block))
      throw new ProviderError('bad_response', 'anthropic sent a content block that is not an object', { provider: 'anthropic' });
    if (block['type'] === 'text' && typeof block['text'] === 'string') text += block['text'];
    else if (block['type'] === 'tool_use' && typeof block['id'] === 'string' && typeof block['name'] === 'string') {
      toolCalls.push({
        id: block['id'],
        type: 'function',
        function: { name: block['name'], arguments: JSON.stringify(block['input'] ?? {}) },
      });
    }
  }
  const prompt = promptTokensOf(body['usage']);
  const completion = count(body['usage']['output_tokens']);
  return {
    id: typeof body['id'] === 'string' ? body['id'] : 'anthropic',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: typeof body['model'] === 'string' ? body['model'] : '',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text === '' && toolCalls.length > 0 ? null : text,
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        },
        finish_reason: finishReasonOf(body['stop_reason']),
      },
    ],
    usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
  };
}
