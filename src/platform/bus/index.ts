/**
 * The event bus: the port, its three adapters and the bus' error catalogue. Callers depend on
 * `EventBus`; wiring picks the adapter from configuration.
 */
export type { Delivery, EventBus, Handler, OutgoingMessage, SubscribeOptions, Subscription } from './port.ts';
export { DEAD_LETTER_HEADERS, deadLetterSubject } from './port.ts';
export type { BusErrorContext, BusErrorListener } from './dispatcher.ts';
export { busErrors, type BusErrorCode } from './errors.ts';
export { createMemoryBus, type MemoryBusOptions } from './memory.ts';
export { createNatsBus, type NatsBusOptions } from './nats.ts';
export { createRedisBus, redisBusKeys, type RedisBusOptions } from './redis.ts';
export { subjectMatches } from './subject-pattern.ts';
