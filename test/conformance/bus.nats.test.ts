import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createNatsBus } from '../../src/platform/bus/nats.ts';
import type { EventBus } from '../../src/platform/bus/port.ts';
import { probeService, uniqueName } from '../support/services.ts';
import { busSuite } from './bus.suite.ts';

const svc = await probeService('nats');

/** Deletes a test's stream over its own connection, so cleanup works whatever state the bus is in. */
const deleteStream = async (url: string, stream: string): Promise<void> => {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream);
  } finally {
    await nc.close();
  }
};

if (svc.ok) {
  busSuite('nats', async () => {
    const stream = uniqueName('bus');
    const options = { url: svc.url, stream, subjectPrefix: stream } as const;
    const buses: EventBus[] = [await createNatsBus(options)];
    const [bus] = buses as [EventBus];
    return {
      bus,
      openPeer: async () => {
        const peer = await createNatsBus(options);
        buses.push(peer);
        return peer;
      },
      cleanup: async () => {
        await Promise.all(buses.map((each) => each.close()));
        await deleteStream(svc.url, stream);
      },
    };
  });
}
