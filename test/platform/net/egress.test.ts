import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { classifyAddress, createEgressPolicy, EgressRefusedError, egressRefusalOf } from '../../../src/platform/net/egress.ts';

const STRICT = { allow_private: false, allow: [] };

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['169.254.169.254', 'link_local'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link_local'],
    ['64:ff9b::a9fe:a9fe', 'link_local'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:0808:0808::1', 'public'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['::127.0.0.1', 'reserved'],
    ['not an address', 'reserved'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });
});

describe('checkUrl: what can be told when the URL is written', () => {
  const policy = createEgressPolicy(STRICT);

  it.each([
    'https://api.openai.com/v1',
    'http://llm.example.com:8080/v1',
    'https://8.8.8.8/v1',
    'https://[2606:4700:4700::1111]/v1',
    // A name is judged at connect time, after resolution.
    'https://internal.corp.example/v1',
  ])('lets %s through', (url) => {
    expect(policy.checkUrl(url)).toBeNull();
  });

  it.each([
    ['http://127.0.0.1:8080/v1', /loopback address 127\.0\.0\.1/],
    // The URL parser normalises every numeric spelling of an IPv4 address before it is judged.
    ['http://2130706433/v1', /loopback address 127\.0\.0\.1/],
    ['http://0x7f.0.0.1/v1', /loopback address 127\.0\.0\.1/],
    ['http://0177.0.0.1/v1', /loopback address 127\.0\.0\.1/],
    ['http://[::1]/v1', /loopback address ::1/],
    ['http://[::ffff:127.0.0.1]/v1', /loopback address/],
    ['http://169.254.169.254/latest/meta-data/', /link-local address 169\.254\.169\.254/],
    ['http://[fe80::1]/', /link-local address/],
    ['http://10.0.0.5/v1', /private address 10\.0\.0\.5/],
    ['http://192.168.0.1/v1', /private address/],
    ['http://[fd00::1]/v1', /private address/],
    ['http://0.0.0.0:8080/', /unspecified address/],
    ['http://localhost:11434/v1', /loopback host \(localhost\)/],
    ['http://LOCALHOST./v1', /loopback host \(localhost\)/],
    ['http://metadata.localhost/', /loopback host/],
    ['file:///etc/passwd', /http or https/],
    ['gopher://example.com/', /http or https/],
    ['ftp://example.com/', /http or https/],
    ['https://user:secret@api.example.com/v1', /credentials/],
    ['https://:secret@api.example.com/v1', /credentials/],
    ['not a url', /not a URL/],
  ])('refuses %s', (url, reason) => {
    expect(policy.checkUrl(url)).toMatch(reason);
  });

  it('lets operators allow their own hosts and networks', () => {
    const allowing = createEgressPolicy({ allow_private: false, allow: ['10.1.0.0/16', 'fd00::/8', '127.0.0.1', 'localhost'] });
    expect(allowing.checkUrl('http://10.1.2.3/v1')).toBeNull();
    expect(allowing.checkUrl('http://10.2.0.1/v1')).toMatch(/private address/);
    expect(allowing.checkUrl('http://[fd00::7]/v1')).toBeNull();
    expect(allowing.checkUrl('http://[::ffff:127.0.0.1]:9/v1')).toBeNull();
    expect(allowing.checkUrl('http://127.0.0.2/v1')).toMatch(/loopback/);
    expect(allowing.checkUrl('http://localhost:9/v1')).toBeNull();
    expect(allowing.checkUrl('http://169.254.169.254/')).toMatch(/link-local/);
  });

  it('with allow_private, checks only the scheme and credentials', () => {
    const open = createEgressPolicy({ allow_private: true, allow: [] });
    expect(open.checkUrl('http://127.0.0.1:9/v1')).toBeNull();
    expect(open.checkUrl('http://localhost:9/v1')).toBeNull();
    expect(open.checkUrl('file:///etc/passwd')).toMatch(/http or https/);
    expect(open.checkUrl('http://u:p@127.0.0.1/')).toMatch(/credentials/);
  });

  it('refuses an allow entry that is neither a host nor an address, naming it', () => {
    expect(() => createEgressPolicy({ allow_private: false, allow: ['10.0.0.0/33'] })).toThrow(/^egress\.allow\[0\]/);
    expect(() => createEgressPolicy({ allow_private: false, allow: ['ok.example', 'http://x'] }, { setting: 'ai.egress' })).toThrow(
      /^ai\.egress\.allow\[1\]/,
    );
  });
});

describe('the dispatcher: checked after DNS resolution, against the address connected to', () => {
  let server: Server;
  let port: number;
  let received = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      received += 1;
      res.end('reached');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  // A resolver of our own stands in for an attacker's DNS: the name can say anything it likes.
  const resolving =
    (answers: Record<string, LookupAddress[]>) =>
    (hostname: string, _options: unknown, callback: (error: Error | null, addresses: LookupAddress[]) => void): void => {
      const addresses = answers[hostname];
      if (addresses === undefined) callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      else callback(null, addresses);
    };

  const fetchVia = async (policy: ReturnType<typeof createEgressPolicy>, url: string): Promise<string | EgressRefusedError> => {
    try {
      const answer = await request(url, { dispatcher: policy.dispatcher });
      return await answer.body.text();
    } catch (error) {
      const refusal = egressRefusalOf(error);
      if (refusal === undefined) throw error;
      return refusal;
    }
  };

  it('refuses a name that passed when written but now resolves to loopback (DNS rebinding)', async () => {
    const policy = createEgressPolicy(STRICT, { resolve: resolving({ 'rebind.test': [{ address: '127.0.0.1', family: 4 }] }) });
    const url = `http://rebind.test:${port}/v1`;
    expect(policy.checkUrl(url)).toBeNull();
    const before = received;
    const outcome = await fetchVia(policy, url);
    expect(outcome).toBeInstanceOf(EgressRefusedError);
    expect((outcome as EgressRefusedError).reason).toMatch(/rebind\.test resolves to a loopback address 127\.0\.0\.1/);
    expect(received).toBe(before);
  });

  it('refuses a name when any of its addresses is not public', async () => {
    const policy = createEgressPolicy(STRICT, {
      resolve: resolving({
        'mixed.test': [
          { address: '8.8.8.8', family: 4 },
          { address: '169.254.169.254', family: 4 },
        ],
      }),
    });
    const outcome = await fetchVia(policy, `http://mixed.test:${port}/`);
    expect((outcome as EgressRefusedError).reason).toMatch(/link-local address 169\.254\.169\.254/);
  });

  it('refuses localhost through the system resolver', async () => {
    const before = received;
    const outcome = await fetchVia(createEgressPolicy(STRICT), `http://localhost:${port}/`);
    expect(outcome).toBeInstanceOf(EgressRefusedError);
    expect(received).toBe(before);
  });

  it('refuses an address written in the URL, which is connected to without any lookup', async () => {
    const before = received;
    const outcome = await fetchVia(createEgressPolicy(STRICT), `http://127.0.0.1:${port}/`);
    expect((outcome as EgressRefusedError).reason).toMatch(/loopback address 127\.0\.0\.1/);
    expect(received).toBe(before);
  });

  it('connects where the operator allowed, by name or by network', async () => {
    const resolve = resolving({ 'llm.corp.test': [{ address: '127.0.0.1', family: 4 }] });
    expect(
      await fetchVia(createEgressPolicy({ allow_private: false, allow: ['*.corp.test'] }, { resolve }), `http://llm.corp.test:${port}/`),
    ).toBe('reached');
    expect(
      await fetchVia(createEgressPolicy({ allow_private: false, allow: ['127.0.0.0/8'] }, { resolve }), `http://llm.corp.test:${port}/`),
    ).toBe('reached');
    expect(await fetchVia(createEgressPolicy({ allow_private: false, allow: ['127.0.0.1'] }), `http://127.0.0.1:${port}/`)).toBe('reached');
    expect(await fetchVia(createEgressPolicy({ allow_private: true, allow: [] }), `http://localhost:${port}/`)).toBe('reached');
  });
});
