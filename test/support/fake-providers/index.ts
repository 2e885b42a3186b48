export { startFakeOpenAi } from './openai.ts';
export { startFakeAnthropic } from './anthropic.ts';
export type { FakeBehaviour, FakeProvider, FakeProviderOptions, RecordedRequest } from './server.ts';
