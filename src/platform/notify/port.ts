/**
 * Notifications (email, for now) as modules send them: an alert to an on-call address, a workflow's
 * report. The port promises one thing above all: a message is either handed to the configured
 * transport or `send` rejects. No adapter drops one silently; without a transport configured
 * (`notify.kind: none`), `send` refuses with `not_configured`.
 */
export interface Notification {
  /** One address or several (at most {@link MAX_RECIPIENTS}), `name@domain`. */
  readonly to: string | readonly string[];
  /** One line, at most 200 characters. */
  readonly subject: string;
  readonly text: string;
  /** An HTML alternative to `text`, for clients that show it. */
  readonly html?: string;
  /** Labels for filtering and tests (`alert`, `workflow:nightly`): lower-case letters, digits and `_.:-`. Sent as `X-Blocks-Tags`. */
  readonly tags?: readonly string[];
}

/** What the transport said about a message it took. */
export interface NotificationReceipt {
  /** The `Message-ID` it was sent with. */
  readonly id: string;
  readonly accepted: readonly string[];
  /**
   * Recipients the server refused while it accepted others: the message went to `accepted` only.
   * (When every recipient is refused, `send` rejects instead.)
   */
  readonly rejected: readonly string[];
}

export type NotifierKind = 'none' | 'memory' | 'smtp';

export interface Notifier {
  readonly kind: NotifierKind;
  /**
   * Validates the message, then hands it to the transport.
   * @throws NotifyError `invalid` (the message), `not_configured`, `rejected` (the server refused it
   *   or every recipient: sending it again will not help) or `unavailable` (could not reach or
   *   authenticate with the server, timed out: worth retrying later)
   */
  send(notification: Notification): Promise<NotificationReceipt>;
  close(): Promise<void>;
}

export type NotifyErrorKind = 'invalid' | 'not_configured' | 'rejected' | 'unavailable';

export class NotifyError extends Error {
  override readonly name = 'NotifyError';
  readonly kind: NotifyErrorKind;

  constructor(kind: NotifyErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
  }

  /** Worth sending again later: the transport could not be reached, not the message refused. */
  get retryable(): boolean {
    return this.kind === 'unavailable';
  }
}

export const MAX_RECIPIENTS = 50;
const MAX_SUBJECT = 200;
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_TAGS = 10;
// Deliberately narrower than RFC 5321: no quoted local parts, comments, or anything that could end a header.
const ADDRESS = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$/;
const TAG = /^[a-z0-9_.:-]{1,64}$/;
// eslint-disable-next-line no-control-regex -- control characters are what is being looked for
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The notification's recipients as a list, checked as {@link checkNotification} does. */
export const recipientsOf = (notification: Notification): string[] =>
  typeof notification.to === 'string' ? [notification.to] : [...notification.to];

/**
 * Checks what every adapter sends: addresses that cannot smuggle a header or a second recipient,
 * a one-line subject, bounded bodies and tags.
 * @throws NotifyError `invalid`, naming the field
 */
export function checkNotification(notification: Notification): void {
  const invalid = (field: string, why: string): NotifyError => new NotifyError('invalid', `notification ${field} ${why}`);
  const to = recipientsOf(notification);
  if (to.length === 0) throw invalid('to', 'names no recipient');
  if (to.length > MAX_RECIPIENTS) throw invalid('to', `names ${to.length} recipients; at most ${MAX_RECIPIENTS}`);
  to.forEach((address, i) => {
    if (!ADDRESS.test(address) || address.length > 254) throw invalid(`to[${i}]`, `'${printable(address)}' is not an address`);
  });
  if (notification.subject.length === 0 || notification.subject.length > MAX_SUBJECT)
    throw invalid('subject', `must be 1 to ${MAX_SUBJECT} characters`);
  if (CONTROL.test(notification.subject)) throw invalid('subject', 'must be one line without control characters');
  if (notification.text.length === 0) throw invalid('text', 'is empty');
  for (const field of ['text', 'html'] as const) {
    const body = notification[field];
    if (body !== undefined && Buffer.byteLength(body) > MAX_BODY_BYTES) throw invalid(field, `is larger than ${MAX_BODY_BYTES} bytes`);
  }
  const tags = notification.tags ?? [];
  if (tags.length > MAX_TAGS) throw invalid('tags', `has ${tags.length} entries; at most ${MAX_TAGS}`);
  tags.forEach((tag, i) => {
    if (!TAG.test(tag)) throw invalid(`tags[${i}]`, `'${printable(tag)}' must be lower-case letters, digits and _.:-`);
  });
}

const printable = (text: string): string => JSON.stringify(text.slice(0, 80)).slice(1, -1);

/** `notify.kind: none`: every send is refused, so a module that needs notifications fails loudly. */
export function createDisabledNotifier(): Notifier {
  return {
    kind: 'none',
    async send(notification) {
      checkNotification(notification);
      throw new NotifyError('not_configured', 'no notification transport is configured (notify.kind is none)');
    },
    async close() {},
  };
}
