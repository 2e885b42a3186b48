import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { createNatsBus, type NatsBusOptions } from '../../src/platform/bus/nats.ts';
import type { EventBus } from '../../src/platform/bus/port.ts';
import { createRedisBus, redisBusKeys, type RedisBusOptions } from '../../src/platform/bus/redis.ts';
import { uniqueName } from '../support/services.ts';
import type { BusFixture } from './bus.suite.ts';

/** Deletes a NATS stream over its own connection, so cleanup works whatever state the bus is in. */
export async function deleteNatsStream(url: string, stream: string): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream);
  } finally {
    await nc.close();
  }
}

/** Deletes every key of a Redis bus namespace over its own connection. */
export async function deleteRedisNamespace(url: string, streamKey: string): Promise<void> {
  const redis = new Redis(url);
  try {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', redisBusKeys(streamKey).all, 'COUNT', 500);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
    if (found.length > 0) await redis.del(...found);
  } finally {
    await redis.quit();
  }
}

/** Options for a NATS bus in a namespace of its own. */
export const natsTestOptions = (url: string): NatsBusOptions => {
  const stream = uniqueName('bus');
  return { url, stream, subjectPrefix: stream };
};

/** Options for a Redis bus in a namespace of its own. */
export const redisTestOptions = (url: string): RedisBusOptions => ({ url, streamKey: `test:${uniqueName('bus')}` });

const fixtureOf = async (open: () => Promise<EventBus>, deleteNamespace: () => Promise<void>): Promise<BusFixture> => {
  const buses: EventBus[] = [await open()];
  const [bus] = buses as [EventBus];
  return {
    bus,
    openPeer: async () => {
      const peer = await open();
      buses.push(peer);
      return peer;
    },
    cleanup: async () => {
      await Promise.all(buses.map((each) => each.close()));
      await deleteNamespace();
    },
  };
};

export const natsBusFixture = (url: string): Promise<BusFixture> => {
  const options = natsTestOptions(url);
  return fixtureOf(
    () => createNatsBus(options),
    () => deleteNatsStream(url, options.stream),
  );
};

export const redisBusFixture = (url: string): Promise<BusFixture> => {
  const options = redisTestOptions(url);
  return fixtureOf(
    () => createRedisBus(options),
    () => deleteRedisNamespace(url, options.streamKey),
  );
};
