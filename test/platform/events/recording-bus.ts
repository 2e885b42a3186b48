import type { EventBus, OutgoingMessage } from '../../../src/platform/bus/port.ts';

/**
 * Wraps a real bus to record every publish call and, while `failing` says so, to refuse one the way
 * a broker that is down would. A port-level double: the bus underneath is real.
 */
export interface RecordingBus extends EventBus {
  /** Every message handed to publish, in call order, whether or not it was accepted. */
  readonly attempts: OutgoingMessage[];
  /** Messages the bus accepted, in order. */
  readonly published: OutgoingMessage[];
  failing: (message: OutgoingMessage) => boolean;
  /** Delay before each publish resolves, to let concurrent relays interleave. */
  delayMs: number;
}

export function createRecordingBus(inner: EventBus): RecordingBus {
  const recording: RecordingBus = {
    kind: inner.kind,
    attempts: [],
    published: [],
    failing: () => false,
    delayMs: 0,
    async publish(message) {
      recording.attempts.push(message);
      if (recording.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, recording.delayMs));
      if (recording.failing(message)) throw new Error(`broker unavailable (test) for ${message.id ?? '?'}`);
      await inner.publish(message);
      recording.published.push(message);
    },
    subscribe: (options, handler) => inner.subscribe(options, handler),
    lag: (consumer) => inner.lag(consumer),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  return recording;
}
