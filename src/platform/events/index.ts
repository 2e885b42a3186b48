export { DEFAULT_EVENT_VERSION, EVENT_HEADERS, isSystemEvent, type NewSystemEvent, type SystemEvent } from './types.ts';
export { newEventId } from './event-id.ts';
export { InvalidEventError, OUTBOX_CHANNEL, appendEvent, appendEvents, buildEvent } from './outbox.ts';
export { createOutboxRelay, type OutboxRelay, type OutboxRelayOptions, type RelayResult } from './relay.ts';
export { handleOnce, withInbox, type InboxOptions } from './inbox.ts';
