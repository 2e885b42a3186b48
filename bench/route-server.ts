// Serves the two targets of bench/route.ts in a process of its own, so the load generator does
// not share an event loop with them: Blocks on the embedded defaults, and a bare fastify route.
// The first line on stdout names their URLs and the API key (scope ai:route) the load sends.
import Fastify from 'fastify';
import { startBenchBlocks } from './support/bench-blocks.ts';

const bench = await startBenchBlocks({ scopes: ['ai:route'] });
const { blocks } = bench;

const bare = Fastify();
bare.post('/route', async () => ({ selected_model: 'm', confidence: 0.9, routing_reason: 'bare', estimated_cost: 0.0001 }));
const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });

process.stdout.write(
  `${JSON.stringify({ gateway: blocks.urls.gateway, autonomous: blocks.urls.autonomous, bare: bareUrl, apiKey: bench.apiKey })}\n`,
);

const stop = async (): Promise<void> => {
  const backlog = await blocks.platform.relay.backlog();
  await bare.close();
  await bench.close();
  process.stderr.write(`server stopped (outbox backlog at stop: ${backlog})\n`);
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
