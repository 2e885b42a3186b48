import { createDisabledNotifier, type Notifier } from './port.ts';
import { createMemoryNotifier } from './memory.ts';
import { createSmtpNotifier } from './smtp.ts';
import type { NotifyConfig } from './config.ts';
import type { SecretResolver } from '../secrets/index.ts';

/**
 * The notifier `notify` asks for. An SMTP password is named by a secret reference, checked against
 * the `secrets` bounds now and read at each connection (a rotated secret is picked up).
 * @throws Error naming the setting for `kind: smtp` without `notify.smtp`, a username without a
 *   password reference or the other way round, or a reference outside the bounds
 */
export function openNotifier(config: NotifyConfig, secrets: Pick<SecretResolver, 'check' | 'read'>): Notifier {
  if (config.kind === 'none') return createDisabledNotifier();
  if (config.kind === 'memory') return createMemoryNotifier();
  const { smtp } = config;
  if (smtp === undefined) throw new Error('notify.kind is smtp but notify.smtp (host, port) is not set');
  const { username, password_ref: passwordRef } = smtp;
  if ((username === undefined) !== (passwordRef === undefined))
    throw new Error('notify.smtp.username and notify.smtp.password_ref are set together or not at all');
  if (passwordRef !== undefined) {
    try {
      secrets.check(passwordRef);
    } catch (error) {
      throw new Error(`notify.smtp.password_ref: ${(error as Error).message}`, { cause: error });
    }
  }
  return createSmtpNotifier({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTls: smtp.require_tls,
    from: config.from,
    timeoutMs: smtp.timeout,
    ...(username === undefined || passwordRef === undefined ? {} : { auth: { user: username, password: () => secrets.read(passwordRef) } }),
  });
}
