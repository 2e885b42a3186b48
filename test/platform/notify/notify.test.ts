import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createMemoryNotifier, type MemoryNotifier } from '../../../src/platform/notify/memory.ts';
import { openPlatform } from '../../../src/platform/open-platform.ts';
import { createSmtpNotifier } from '../../../src/platform/notify/smtp.ts';
import { openNotifier } from '../../../src/platform/notify/open.ts';
import { createDisabledNotifier, NotifyError, type Notification, type Notifier } from '../../../src/platform/notify/port.ts';
import { createSecretResolver } from '../../../src/platform/secrets/index.ts';
import { loadConfig } from '../../../src/platform/config/load-config.ts';
import { CONFIG_DIR, testConfig } from '../../support/blocks.ts';
import { MIGRATIONS, testRegistry } from '../../support/registry.ts';
import { startTestSmtpServer, type TestSmtpServer } from '../../support/smtp-server.ts';

const alert: Notification = {
  to: 'oncall@example.com',
  subject: 'Breaker open: openai',
  text: 'The openai breaker opened at 12:00.',
  tags: ['alert'],
};

const refusal = async (sending: Promise<unknown>): Promise<NotifyError> => {
  const error = await sending.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(NotifyError);
  return error as NotifyError;
};

/** Every adapter checks messages the same way before anything is sent. */
const checksOf = (name: string, make: () => Notifier) =>
  describe(`${name}: messages that could smuggle a header or a recipient are refused`, () => {
    it.each([
      [{ ...alert, to: [] }, /names no recipient/],
      [{ ...alert, to: 'not-an-address' }, /to\[0\] 'not-an-address' is not an address/],
      [{ ...alert, to: 'a@example.com>\r\nRCPT TO:<b@example.com' }, /to\[0\]/],
      [{ ...alert, to: ['ok@example.com', 'x@example.com, y@example.com'] }, /to\[1\]/],
      [{ ...alert, to: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`) }, /at most 50/],
      [{ ...alert, subject: 'hello\r\nBcc: everyone@example.com' }, /subject must be one line/],
      [{ ...alert, subject: '' }, /subject must be 1 to 200/],
      [{ ...alert, text: '' }, /text is empty/],
      [{ ...alert, tags: ['Not A Tag'] }, /tags\[0\]/],
    ])('%#: refuses as invalid', async (notification, why) => {
      const error = await refusal(make().send(notification));
      expect(error.kind).toBe('invalid');
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(why);
    });
  });

checksOf('memory', () => createMemoryNotifier());
checksOf('none', () => createDisabledNotifier());

describe('the in-memory sink', () => {
  it('records each message as it was sent, with an id, and keeps the newest ones', async () => {
    const sink = createMemoryNotifier({ capacity: 2 });
    const receipt = await sink.send(alert);
    expect(receipt).toEqual({ id: expect.stringMatching(/^<.+@blocks\.memory>$/), accepted: ['oncall@example.com'], rejected: [] });
    expect(sink.sent[0]).toMatchObject({
      id: receipt.id,
      to: ['oncall@example.com'],
      subject: alert.subject,
      text: alert.text,
      tags: ['alert'],
    });
    await sink.send({ ...alert, subject: 'second' });
    await sink.send({ ...alert, subject: 'third', to: ['a@example.com', 'b@example.com'] });
    expect(sink.sent.map((message) => message.subject)).toEqual(['second', 'third']);
    sink.clear();
    expect(sink.sent).toEqual([]);
  });
});

describe('without a transport (notify.kind: none)', () => {
  it('refuses every send instead of dropping it', async () => {
    const error = await refusal(createDisabledNotifier().send(alert));
    expect(error.kind).toBe('not_configured');
    expect(error.message).toMatch(/notify\.kind is none/);
  });
});

describe('SMTP, against a real SMTP server', () => {
  let server: TestSmtpServer;
  const smtp = (overrides: Partial<Parameters<typeof createSmtpNotifier>[0]> = {}) =>
    createSmtpNotifier({
      host: '127.0.0.1',
      port: server.port,
      secure: false,
      requireTls: false,
      from: 'Blocks <blocks@example.com>',
      timeoutMs: 2_000,
      ...overrides,
    });

  beforeAll(async () => {
    server = await startTestSmtpServer();
  });
  afterEach(() => {
    server.received.length = 0;
    server.behaviour.rejectRecipients.clear();
    server.behaviour.afterData = '250 2.0.0 queued';
    server.behaviour.silent = false;
    delete server.behaviour.credentials;
  });
  afterAll(async () => {
    await server.close();
  });

  it('delivers text, HTML and tags to every recipient', async () => {
    const receipt = await smtp().send({
      to: ['oncall@example.com', 'lead@example.com'],
      subject: 'Budget 90 % used – tenant acme',
      text: 'Tenant acme used 90% of its budget.\n.\nA line that was only a dot.',
      html: '<p>Tenant <b>acme</b> used 90% of its budget.</p>',
      tags: ['alert', 'budget:acme'],
    });
    expect(receipt.accepted).toEqual(['oncall@example.com', 'lead@example.com']);
    expect(receipt.rejected).toEqual([]);
    const [mail] = server.received;
    expect(mail).toMatchObject({ from: 'blocks@example.com', to: ['oncall@example.com', 'lead@example.com'] });
    const data = mail?.data ?? '';
    expect(data).toMatch(/^From: Blocks <blocks@example\.com>$/m);
    expect(data).toMatch(/^To: oncall@example\.com, lead@example\.com$/m);
    expect(data).toMatch(/^Subject: =\?UTF-8\?/m);
    expect(data).toMatch(/^X-Blocks-Tags: alert budget:acme$/m);
    expect(data).toContain(`Message-ID: ${receipt.id}`);
    expect(data).toMatch(/multipart\/alternative/);
    expect(data).toContain('Tenant acme used 90% of its budget.\r\n.\r\nA line that was only a dot.');
    expect(data).toContain('<p>Tenant <b>acme</b> used 90% of its budget.</p>');
  });

  it('returns the recipients the server refused among accepted ones, and refuses when it takes none', async () => {
    server.behaviour.rejectRecipients.add('gone@example.com');
    const receipt = await smtp().send({ ...alert, to: ['oncall@example.com', 'gone@example.com'] });
    expect(receipt).toMatchObject({ accepted: ['oncall@example.com'], rejected: ['gone@example.com'] });
    expect(server.received.map((mail) => mail.to)).toEqual([['oncall@example.com']]);

    const error = await refusal(smtp().send({ ...alert, to: 'gone@example.com' }));
    expect(error.kind).toBe('rejected');
    expect(error.message).toMatch(/550 5\.1\.1 no such user/);
  });

  it('tells a refused message (do not retry) from a deferred one (retry)', async () => {
    server.behaviour.afterData = '554 5.7.1 message refused';
    const refused = await refusal(smtp().send(alert));
    expect([refused.kind, refused.retryable]).toEqual(['rejected', false]);
    server.behaviour.afterData = '451 4.3.0 try again later';
    const deferred = await refusal(smtp().send(alert));
    expect([deferred.kind, deferred.retryable]).toEqual(['unavailable', true]);
    expect(server.received).toEqual([]);
  });

  it('logs in with the password its secret reference names, read at each send', async () => {
    server.behaviour.credentials = { user: 'blocks', password: 'first-secret' };
    const env: Record<string, string> = { BLOCKS_SECRET_SMTP: 'first-secret' };
    const secrets = createSecretResolver({
      bounds: { env: ['BLOCKS_SECRET_*'], directories: [] },
      dataDir: '/tmp/blocks-notify-test',
      env,
    });
    const config = {
      kind: 'smtp' as const,
      from: 'blocks@example.com',
      smtp: {
        host: '127.0.0.1',
        port: server.port,
        secure: false,
        require_tls: false,
        username: 'blocks',
        password_ref: 'env:BLOCKS_SECRET_SMTP',
        timeout: 2_000,
      },
    };
    const notifier = openNotifier(config, secrets);
    await notifier.send(alert);
    expect(server.received[0]?.user).toBe('blocks');
    // Rotated on the server and in the environment: the next send uses the new one.
    server.behaviour.credentials = { user: 'blocks', password: 'second-secret' };
    env['BLOCKS_SECRET_SMTP'] = 'second-secret';
    await notifier.send(alert);
    expect(server.received).toHaveLength(2);
    server.behaviour.credentials = { user: 'blocks', password: 'third-secret' };
    const error = await refusal(notifier.send(alert));
    expect([error.kind, error.retryable]).toEqual(['unavailable', true]);
    expect(error.message).not.toContain('second-secret');

    expect(() => openNotifier({ ...config, smtp: { ...config.smtp, password_ref: 'env:HOME' } }, secrets)).toThrow(
      /notify\.smtp\.password_ref/,
    );
    expect(() => openNotifier({ ...config, smtp: { ...config.smtp, username: undefined } }, secrets)).toThrow(/set together/);
    expect(() => openNotifier({ kind: 'smtp', from: 'blocks@example.com' }, secrets)).toThrow(/notify\.smtp/);
  });

  it('reports a relay that cannot be reached or that hangs as unavailable, within its timeout', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = await refusal(smtp({ port }).send(alert));
    expect([unreachable.kind, unreachable.message]).toEqual(['unavailable', expect.stringMatching(/ECONNECTION|ECONNREFUSED/)]);

    server.behaviour.silent = true;
    const started = performance.now();
    const hung = await refusal(smtp({ timeoutMs: 300 }).send(alert));
    expect(hung.kind).toBe('unavailable');
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('notify in the configuration', () => {
  const load = (env: string, overrides: Record<string, unknown> = {}) =>
    loadConfig({
      configDir: CONFIG_DIR,
      env: { BLOCKS_ENV: env, BLOCKS_DATA_DIR: '/tmp/blocks-notify-config' },
      overrides,
      sections: testRegistry.configSections,
    });

  it('refuses by default, keeps messages in tests, and reads an SMTP timeout as a duration', () => {
    expect(load('development').notify).toEqual({ kind: 'none', from: 'Blocks <blocks@localhost>' });
    expect(load('test').notify.kind).toBe('memory');
    const smtp = { host: 'smtp.example.com', port: 587, secure: false, require_tls: true, timeout: '5s' };
    expect(load('test', { notify: { kind: 'smtp', smtp } }).notify.smtp?.timeout).toBe(5_000);
    expect(() => load('test', { notify: { kind: 'carrier-pigeon' } })).toThrow(/notify/);
  });
});

describe('platform.notify', () => {
  it('is the notifier the configuration names, and a setting it cannot use stops the platform from opening', async () => {
    const platform = await openPlatform({ config: testConfig(), version: 'test', service: 'test', migrations: MIGRATIONS });
    try {
      expect(platform.notify.kind).toBe('memory');
      await platform.notify.send(alert);
      expect((platform.notify as MemoryNotifier).sent.map((message) => message.subject)).toEqual([alert.subject]);
    } finally {
      await platform.close();
    }
    await expect(
      openPlatform({ config: testConfig({}, { notify: { kind: 'smtp' } }), version: 'test', service: 'test', migrations: MIGRATIONS }),
    ).rejects.toThrow(/notify\.smtp/);
  }, 30_000);
});
