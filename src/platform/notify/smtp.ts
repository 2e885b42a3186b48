import { createTransport } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { checkNotification, NotifyError, recipientsOf, type Notifier } from './port.ts';

export interface SmtpNotifierOptions {
  readonly host: string;
  readonly port: number;
  /** TLS from the first byte (port 465). Otherwise STARTTLS is used whenever the server offers it. */
  readonly secure: boolean;
  /** Send nothing over a connection STARTTLS did not encrypt (a server that does not offer it is refused). */
  readonly requireTls: boolean;
  /** AUTH with these; the password is read at each connection, so a rotated secret is picked up. */
  readonly auth?: { readonly user: string; readonly password: () => string };
  /** The `From` of every message (`Blocks <alerts@example.com>`). */
  readonly from: string;
  /** Longest wait for a connection, the greeting, and each answer of the server. */
  readonly timeoutMs: number;
  /** A CA to trust for the server's certificate besides the system's (a private relay). */
  readonly ca?: string;
}

/**
 * Sends through an SMTP relay (`notify.kind: smtp`), one connection per message. The relay's
 * refusals are passed on, never swallowed: a refused message or every recipient refused is
 * `rejected`, a relay that cannot be reached, times out, answers 4xx or refuses the login is
 * `unavailable`; recipients refused among accepted ones come back in the receipt's `rejected`.
 */
export function createSmtpNotifier(options: SmtpNotifierOptions): Notifier {
  const transportOptions = (): SMTPTransport.Options => ({
    host: options.host,
    port: options.port,
    secure: options.secure,
    requireTLS: options.requireTls,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
    ...(options.auth === undefined ? {} : { auth: { user: options.auth.user, pass: options.auth.password() } }),
    ...(options.ca === undefined ? {} : { tls: { ca: options.ca } }),
  });
  return {
    kind: 'smtp',
    async send(notification) {
      checkNotification(notification);
      const to = recipientsOf(notification);
      const transport = createTransport(transportOptions());
      try {
        const info = await transport.sendMail({
          from: options.from,
          to,
          subject: notification.subject,
          text: notification.text,
          ...(notification.html === undefined ? {} : { html: notification.html }),
          ...(notification.tags?.length ? { headers: { 'X-Blocks-Tags': notification.tags.join(' ') } } : {}),
          // Nothing the message says may make the transport read a file or fetch a URL.
          disableFileAccess: true,
          disableUrlAccess: true,
        });
        return { id: info.messageId, accepted: info.accepted.map(addressOf), rejected: info.rejected.map(addressOf) };
      } catch (error) {
        throw notifyErrorOf(error, options);
      } finally {
        transport.close();
      }
    },
    async close() {},
  };
}

const addressOf = (entry: string | { address: string }): string => (typeof entry === 'string' ? entry : entry.address);

/** The relay's answer, kept as the cause; the message says which kind and why, without the credentials. */
function notifyErrorOf(error: unknown, options: SmtpNotifierOptions): NotifyError {
  const { code, responseCode, response } = error as { code?: string; responseCode?: number; response?: string };
  const where = `SMTP relay ${options.host}:${options.port}`;
  const said = response === undefined ? (error instanceof Error ? error.message : String(error)) : response;
  if (typeof responseCode === 'number' && responseCode >= 500 && code !== 'EAUTH') {
    return new NotifyError('rejected', `${where} refused the message: ${said}`, { cause: error });
  }
  return new NotifyError('unavailable', `${where} did not take the message (${code ?? 'error'}): ${said}`, { cause: error });
}
