import type { EventBus, OutgoingMessage } from '../../../src/platform/bus/port.ts';

/**
 * Wraps a real bus to record every publish call, to refuse a message while `failing` says so (the
 * way a broker that answers refuses one it will not store), and, while `down`, to fail every publish
 * and ping as an unreachable broker does. A port-level double: the bus underneath is real.
 */
export interface RecordingBus extends EventBus {
  /** Every message handed to publish, in call order, whether or not it was accepted. */
  readonly attempts: OutgoingMessage[];
  /** Messages the bus accepted, in order. */
  readonly published: OutgoingMessage[];
  failing: (message: OutgoingMessage) => boolean;
  down: boolean;
  /** Most publishes that were in flight at once, and whether two of one key ever were. */
  readonly concurrency: { max: number; sameKeyOverlap: boolean };
  /** Delay before each publish resolves, to let concurrent relays interleave. */
  delayMs: number;
}

export function createRecordingBus(inner: EventBus): RecordingBus {
  const inFlight: OutgoingMessage[] = [];
  const recording: RecordingBus = {
    kind: inner.kind,
    attempts: [],
    published: [],
    failing: () => false,
    down: false,
    delayMs: 0,
    concurrency: { max: 0, sameKeyOverlap: false },
    async publish(message) {
      recording.attempts.push(message);
      inFlight.push(message);
      recording.concurrency.max = Math.max(recording.concurrency.max, inFlight.length);
      if (message.key !== undefined && inFlight.filter((m) => m.key === message.key).length > 1)
        recording.concurrency.sameKeyOverlap = true;
      try {
        if (recording.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, recording.delayMs));
        if (recording.down) throw new Error(`broker unreachable (test) for ${message.id ?? '?'}`);
        if (recording.failing(message)) throw new Error(`message refused (test): ${message.id ?? '?'}`);
        await inner.publish(message);
        recording.published.push(message);
      } finally {
        inFlight.splice(inFlight.indexOf(message), 1);
      }
    },
    subscribe: (options, handler) => inner.subscribe(options, handler),
    lag: (consumer) => inner.lag(consumer),
    ping: () => (recording.down ? Promise.reject(new Error('broker unreachable (test)')) : inner.ping()),
    close: () => inner.close(),
  };
  return recording;
}
