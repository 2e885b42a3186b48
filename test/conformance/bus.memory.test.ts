import { createMemoryBus } from '../../src/platform/bus/memory.ts';
import { busSuite } from './bus.suite.ts';

busSuite(
  'memory',
  async () => {
    const bus = createMemoryBus();
    return { bus, cleanup: () => bus.close() };
  },
  {
    notApplicable: {
      closeMidHandler:
        'the in-process bus keeps its messages in its own process, so there is no peer process to hand them to; ' +
        'closing it (or the process dying) loses them by design. Redelivery between subscribers of one process is covered by the stop case.',
    },
  },
);
