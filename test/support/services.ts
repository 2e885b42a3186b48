import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * Real services the suites talk to. Outside CI a suite whose service is unreachable is skipped
 * with a line naming the address it tried; with BLOCKS_REQUIRE_SERVICES=1 (set by .ci/run) it fails.
 */
export const serviceUrls = {
  postgres: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  nats: process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222',
} as const;

export type ServiceName = keyof typeof serviceUrls;

export interface ServiceProbe {
  readonly ok: boolean;
  readonly url: string;
}

const reachable = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port), timeout: 1000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });

/** Checks that `service` answers; throws when it does not and services are mandatory. */
export async function probeService(service: ServiceName): Promise<ServiceProbe> {
  const url = serviceUrls[service];
  const ok = await reachable(url);
  if (!ok) {
    if (process.env.BLOCKS_REQUIRE_SERVICES === '1') {
      throw new Error(`${service} is required (BLOCKS_REQUIRE_SERVICES=1) but ${url} is unreachable`);
    }
    console.warn(`skipping ${service} suite: tried ${url}, unreachable`);
  }
  return { ok, url };
}

/** A name no other test run uses: for databases, streams and key prefixes. */
export const uniqueName = (prefix: string): string => `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
