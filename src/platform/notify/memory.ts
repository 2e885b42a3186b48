import { randomUUID } from 'node:crypto';
import { checkNotification, recipientsOf, type Notification, type Notifier } from './port.ts';

/** A message the in-memory sink took, as it was sent. */
export interface RecordedNotification extends Notification {
  readonly id: string;
  readonly to: readonly string[];
  readonly tags: readonly string[];
  readonly at: Date;
}

export interface MemoryNotifier extends Notifier {
  /** Every message taken, oldest first (the newest `capacity` of them). */
  readonly sent: readonly RecordedNotification[];
  clear(): void;
}

/**
 * Keeps messages in the process instead of sending them (`notify.kind: memory`): what tests and a
 * development start use. It checks messages exactly as the SMTP adapter does, and keeps the newest
 * `capacity` (1000 by default), so a long-running development process does not grow without bound.
 */
export function createMemoryNotifier(options: { capacity?: number; now?: () => Date } = {}): MemoryNotifier {
  const capacity = options.capacity ?? 1000;
  const now = options.now ?? (() => new Date());
  const sent: RecordedNotification[] = [];
  return {
    kind: 'memory',
    get sent() {
      return sent;
    },
    clear() {
      sent.length = 0;
    },
    async send(notification) {
      checkNotification(notification);
      const to = recipientsOf(notification);
      const id = `<${randomUUID()}@blocks.memory>`;
      sent.push({ ...notification, id, to, tags: [...(notification.tags ?? [])], at: now() });
      if (sent.length > capacity) sent.splice(0, sent.length - capacity);
      return { id, accepted: to, rejected: [] };
    },
    async close() {},
  };
}
