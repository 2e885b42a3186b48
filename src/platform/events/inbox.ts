import type { Database, Transaction } from '../db/port.ts';
import type { Delivery, Handler } from '../bus/port.ts';

/**
 * Runs `work` once per (consumer, event): the inbox row and the effect commit in one transaction,
 * so a redelivered event, or the same event handled by two replicas at once, has one effect.
 * Resolves true when `work` ran, false when the event had already been processed. When `work`
 * throws nothing is recorded and the error is rethrown, so a redelivery tries again.
 */
export async function handleOnce(
  db: Database,
  consumer: string,
  eventId: string,
  work: (tx: Transaction) => Promise<void>,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    // A concurrent transaction inserting the same key makes this wait for its outcome: on its
    // commit this inserts nothing, on its rollback this one goes ahead.
    const { rowCount } = await tx.query('INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
      consumer,
      eventId,
    ]);
    if (rowCount === 0) return false;
    await work(tx);
    return true;
  });
}

export interface InboxOptions {
  readonly db: Database;
  /** The inbox's name for this consumer; use the subscription's consumer name. */
  readonly consumer: string;
}

/**
 * Wraps a handler so its database effects happen once per message id (an event's `event_id`, as the
 * relay publishes it): `work` gets the delivery and a transaction to make its changes in. A duplicate
 * is acked without calling `work`.
 */
export function withInbox(options: InboxOptions, work: (delivery: Delivery, tx: Transaction) => Promise<void>): Handler {
  return async (delivery) => {
    await handleOnce(options.db, options.consumer, delivery.id, (tx) => work(delivery, tx));
  };
}
