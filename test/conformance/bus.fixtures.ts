import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
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

/** Whether the NATS server holds `consumer` on `stream`, asked over a connection of its own. */
export async function natsConsumerExists(url: string, stream: string, consumer: string): Promise<boolean> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.info(stream, consumer);
    return true;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) return false;
    throw error;
  } finally {
    await nc.close();
  }
}

/** Whether Redis holds anything of `consumer`: its group on the stream, its pattern or its ephemeral deadline. */
export async function redisConsumerExists(url: string, streamKey: string, consumer: string): Promise<boolean> {
  const redis = new Redis(url);
  try {
    const keys = redisBusKeys(streamKey);
    const groups = (await redis.exists(keys.stream)) === 1 ? ((await redis.call('XINFO', 'GROUPS', keys.stream)) as unknown[][]) : [];
    const hasGroup = groups.some((row) => row[row.indexOf('name') + 1] === consumer);
    const registered = (await redis.hexists(keys.consumers, consumer)) === 1;
    const deadline = await redis.zscore(keys.ephemeral, consumer);
    return hasGroup || registered || deadline !== null;
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

const fixtureOf = async (
  open: () => Promise<EventBus>,
  deleteNamespace: () => Promise<void>,
  consumerExists: (consumer: string) => Promise<boolean>,
): Promise<BusFixture> => {
  const buses: EventBus[] = [await open()];
  const [bus] = buses as [EventBus];
  return {
    bus,
    consumerExists,
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
    (consumer) => natsConsumerExists(url, options.stream, consumer),
  );
};

export const redisBusFixture = (url: string): Promise<BusFixture> => {
  const options = redisTestOptions(url);
  return fixtureOf(
    () => createRedisBus(options),
    () => deleteRedisNamespace(url, options.streamKey),
    (consumer) => redisConsumerExists(url, options.streamKey, consumer),
  );
};

/** A fresh NATS namespace for a bus process of the kill case. */
export const natsProcessTarget = async (url: string) => {
  const options = natsTestOptions(url);
  return { target: { kind: 'nats', options } as const, cleanup: () => deleteNatsStream(url, options.stream) };
};

/** A fresh Redis namespace for a bus process of the kill case. */
export const redisProcessTarget = async (url: string) => {
  const options = redisTestOptions(url);
  return { target: { kind: 'redis', options } as const, cleanup: () => deleteRedisNamespace(url, options.streamKey) };
};
