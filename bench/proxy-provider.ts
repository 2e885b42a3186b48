// The fake OpenAI provider of bench/proxy.ts in a process of its own: it answers every chat
// completion at once (no pauses, nothing recorded), so what is measured is Blocks, not the provider.
import { startFakeOpenAi } from '../test/support/fake-providers/index.ts';

const fake = await startFakeOpenAi({ kind: 'answer' }, { chunkDelayMs: 0, recordRequests: false });
process.stdout.write(`${JSON.stringify({ baseUrl: fake.baseUrl })}\n`);
process.once('SIGTERM', () => void fake.close().then(() => process.exit(0)));
