import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A message the server took: its envelope and its data, dot-stuffing undone. */
export interface ReceivedMail {
  readonly from: string;
  readonly to: readonly string[];
  readonly data: string;
  /** The user that authenticated, if any. */
  readonly user?: string;
}

/** What the server does; change it between sends. */
export interface SmtpBehaviour {
  /** Recipients answered 550. */
  rejectRecipients: Set<string>;
  /** Answer at the end of DATA (250 by default): `554 ...` refuses the message, `451 ...` defers it. */
  afterData: string;
  /** Never send the greeting: a relay that accepts connections and then hangs. */
  silent: boolean;
  /** AUTH PLAIN is offered and required when set. */
  credentials?: { user: string; password: string };
}

export interface TestSmtpServer {
  readonly port: number;
  readonly received: ReceivedMail[];
  readonly behaviour: SmtpBehaviour;
  close(): Promise<void>;
}

/**
 * A small SMTP server on 127.0.0.1 (RFC 5321's sending half: EHLO, AUTH PLAIN, MAIL, RCPT, DATA,
 * RSET, NOOP, QUIT), enough for a real client to deliver to and for tests to make it refuse,
 * defer or hang. No TLS: the client is told nothing about STARTTLS.
 */
export async function startTestSmtpServer(): Promise<TestSmtpServer> {
  const received: ReceivedMail[] = [];
  const behaviour: SmtpBehaviour = { rejectRecipients: new Set(), afterData: '250 2.0.0 queued', silent: false };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (behaviour.silent) return;
    serve(socket, behaviour, received);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    behaviour,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function serve(socket: Socket, behaviour: SmtpBehaviour, received: ReceivedMail[]): void {
  const say = (line: string): void => void socket.write(`${line}\r\n`);
  let buffer = '';
  let from: string | undefined;
  let to: string[] = [];
  let user: string | undefined;
  let data: string[] | undefined;
  const reset = (): void => {
    from = undefined;
    to = [];
    data = undefined;
  };
  say('220 test-smtp ESMTP ready');
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\r\n'); end !== -1; end = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (data !== undefined) {
        if (line !== '.') {
          data.push(line.startsWith('..') ? line.slice(1) : line);
          continue;
        }
        const accepted = behaviour.afterData.startsWith('250');
        if (accepted) received.push({ from: from ?? '', to, data: data.join('\r\n'), ...(user === undefined ? {} : { user }) });
        say(behaviour.afterData);
        reset();
        continue;
      }
      const [verb = '', ...rest] = line.split(' ');
      const argument = rest.join(' ');
      switch (verb.toUpperCase()) {
        case 'EHLO':
          say('250-test-smtp');
          if (behaviour.credentials) say('250-AUTH PLAIN');
          say('250 8BITMIME');
          break;
        case 'HELO':
          say('250 test-smtp');
          break;
        case 'AUTH': {
          const [mechanism, encoded = ''] = argument.split(' ');
          const [, name, password] = Buffer.from(encoded, 'base64').toString('utf8').split('\u0000');
          const expected = behaviour.credentials;
          if (mechanism?.toUpperCase() === 'PLAIN' && expected && name === expected.user && password === expected.password) {
            user = name;
            say('235 2.7.0 authenticated');
          } else say('535 5.7.8 authentication failed');
          break;
        }
        case 'MAIL':
          if (behaviour.credentials && user === undefined) say('530 5.7.0 authentication required');
          else {
            from = /<(.*)>/.exec(argument)?.[1] ?? '';
            say('250 2.1.0 ok');
          }
          break;
        case 'RCPT': {
          const address = /<(.*)>/.exec(argument)?.[1] ?? '';
          if (behaviour.rejectRecipients.has(address)) say('550 5.1.1 no such user');
          else {
            to.push(address);
            say('250 2.1.5 ok');
          }
          break;
        }
        case 'DATA':
          if (from === undefined || to.length === 0) say('503 5.5.1 need MAIL and RCPT');
          else {
            data = [];
            say('354 end with .');
          }
          break;
        case 'RSET':
          reset();
          say('250 2.0.0 ok');
          break;
        case 'NOOP':
          say('250 2.0.0 ok');
          break;
        case 'QUIT':
          say('221 2.0.0 bye');
          socket.end();
          break;
        default:
          say('502 5.5.2 not implemented');
      }
    }
  });
}
