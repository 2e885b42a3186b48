import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';

/** A dependency /health reports on. `check` resolves with its round-trip in milliseconds or throws. */
export interface DependencyCheck {
  readonly name: string;
  /** A required dependency being down makes the process not ready. */
  readonly required: boolean;
  check(): Promise<number>;
}

export interface DependencyState {
  status: 'up' | 'down';
  required: boolean;
  latency_ms: number;
  error?: string;
}

export interface HealthOptions {
  readonly version: string;
  readonly checks: readonly DependencyCheck[];
  /** A check that has not answered by then counts as down. */
  readonly timeoutMs?: number;
  /** False while starting and once shutdown begins, so load balancers stop sending traffic. */
  readonly accepting: () => boolean;
}

async function run(check: DependencyCheck, timeoutMs: number): Promise<DependencyState> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    const latency = await Promise.race([check.check(), timeout]);
    return { status: 'up', required: check.required, latency_ms: round(latency) };
  } catch (error) {
    return { status: 'down', required: check.required, latency_ms: round(performance.now() - started), error: (error as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

const DependencySchema = Type.Object({
  status: Type.Enum(['up', 'down']),
  required: Type.Boolean(),
  latency_ms: Type.Number(),
  error: Type.Optional(Type.String()),
});

/** `/health`, `/health/ready` and `/health/live` as the spec writes them. */
export async function healthRoutes(app: FastifyInstance, options: HealthOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const checkAll = async (): Promise<Record<string, DependencyState>> => {
    const states = await Promise.all(options.checks.map((c) => run(c, timeoutMs)));
    return Object.fromEntries(options.checks.map((c, i) => [c.name, states[i] as DependencyState]));
  };

  app.get(
    '/health',
    {
      config: { scope: 'public' },
      schema: {
        summary: 'Health with each dependency and its latency',
        tags: ['health'],
        response: {
          200: Type.Object({
            status: Type.Enum(['healthy', 'degraded', 'unhealthy']),
            timestamp: Type.String({ format: 'date-time' }),
            version: Type.String(),
            dependencies: Type.Record(Type.String(), DependencySchema),
          }),
        },
      },
    },
    async () => {
      const dependencies = await checkAll();
      const down = Object.values(dependencies).filter((d) => d.status === 'down');
      const status = down.some((d) => d.required) ? 'unhealthy' : down.length > 0 ? 'degraded' : 'healthy';
      return { status, timestamp: new Date().toISOString(), version: options.version, dependencies };
    },
  );

  app.get(
    '/health/ready',
    {
      config: { scope: 'public' },
      schema: {
        summary: 'Whether this process should receive traffic (503 when not)',
        tags: ['health'],
        response: { 200: Type.Object({ ready: Type.Boolean() }), 503: Type.Object({ ready: Type.Boolean() }) },
      },
    },
    async (_request, reply) => {
      const dependencies = await checkAll();
      const ready = options.accepting() && Object.values(dependencies).every((d) => d.status === 'up' || !d.required);
      return reply.code(ready ? 200 : 503).send({ ready });
    },
  );

  app.get(
    '/health/live',
    {
      config: { scope: 'public' },
      schema: { summary: 'Whether the process is alive', tags: ['health'], response: { 200: Type.Object({ live: Type.Boolean() }) } },
    },
    async () => ({ live: true }),
  );
}
