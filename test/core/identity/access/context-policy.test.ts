import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningBlocks } from '../../../../src/start.ts';
import { startTestBlocks, testConfig } from '../../../support/blocks.ts';
import { testCredentials, type TestCredentials } from '../../../support/credentials.ts';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const hhmm = (minutes: number): string => {
  const m = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

// The context half of the zero-trust decision, from real `auth.tenants.<tenant>` configuration.
// The tests call from 127.0.0.1, so each rule is written to exclude (or include) exactly that, now.
describe('tenant context rules (auth.tenants)', () => {
  let blocks: RunningBlocks;
  let creds: TestCredentials;
  // Far from now either way, so the minute turning during the test changes nothing.
  const nowUtc = new Date();
  const minute = nowUtc.getUTCHours() * 60 + nowUtc.getUTCMinutes();
  // Today and the day nearest now (tomorrow in the afternoon): still right if midnight passes during the test.
  const nearDays = [DAYS[nowUtc.getUTCDay()], DAYS[(nowUtc.getUTCDay() + (minute >= 720 ? 1 : 6)) % 7]] as Array<(typeof DAYS)[number]>;

  beforeAll(async () => {
    const config = testConfig(
      {},
      {
        auth: {
          tenants: {
            'elsewhere-only': { ip_allow: ['10.0.0.0/8', 'fd00::/8'] },
            'loopback-denied': { ip_allow: ['127.0.0.0/8'], ip_deny: ['127.0.0.1'] },
            'loopback-allowed': { ip_allow: ['192.168.0.0/16', '127.0.0.0/8'], ip_deny: ['10.0.0.0/8'] },
            'later-today': { hours: `${hhmm(minute + 120)}-${hhmm(minute + 180)}` },
            'open-now': { hours: `${hhmm(minute - 120)}-${hhmm(minute + 120)}`, days: nearDays },
            'not-today': { days: DAYS.filter((day) => !nearDays.includes(day)) },
            devices: { require_device: true },
          },
        },
      },
    );
    blocks = await startTestBlocks({ config });
    creds = testCredentials(blocks);
  });
  afterAll(async () => {
    await blocks?.close();
  });

  const call = async (tenant: string, headers: Record<string, string> = {}, role: 'gateway' | 'autonomous' = 'gateway') => {
    const response = await fetch(`${blocks.urls[role] as string}/api/v1/autonomous/ai/models`, {
      headers: { ...(await creds.headers(tenant, ['ai:models:read'])), ...headers },
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const refused = (reason: string) => ({ status: 403, body: { code: 'ACCESS_DENIED', reason } });

  it('refuses a source address outside ip_allow, or inside ip_deny, on the gateway and on the service port', async () => {
    expect(await call('elsewhere-only')).toMatchObject(refused('ip_not_allowed'));
    expect(await call('elsewhere-only', {}, 'autonomous')).toMatchObject(refused('ip_not_allowed'));
    // Deny wins over allow.
    expect(await call('loopback-denied')).toMatchObject(refused('ip_denied'));
    expect(await call('loopback-denied', {}, 'autonomous')).toMatchObject(refused('ip_denied'));
    expect(await call('loopback-allowed')).toMatchObject({ status: 200 });
  });

  it('refuses calls outside the tenant hours or days, and allows them inside', async () => {
    expect(await call('later-today')).toMatchObject(refused('outside_hours'));
    expect(await call('not-today')).toMatchObject(refused('outside_hours'));
    expect(await call('open-now')).toMatchObject({ status: 200 });
  });

  it('requires a device registered for the tenant when the tenant says so', async () => {
    // The device exists before it is first asked about (the registry remembers answers for a while).
    await creds.headers('devices', ['ai:models:read']);
    await creds.headers('loopback-allowed', ['ai:models:read']);
    const insert = 'INSERT INTO devices (id, tenant, fingerprint, name) VALUES ($1, $2, $3, $4)';
    await blocks.platform.db.query(insert, [randomUUID(), 'devices', 'laptop-7', 'laptop']);
    await blocks.platform.db.query(insert, [randomUUID(), 'loopback-allowed', 'phone-3', "another tenant's phone"]);

    expect(await call('devices')).toMatchObject(refused('device_required'));
    expect(await call('devices', { 'x-blocks-device': 'laptop-8' })).toMatchObject(refused('device_unknown'));
    // Registered, but for another tenant.
    expect(await call('devices', { 'x-blocks-device': 'phone-3' })).toMatchObject(refused('device_unknown'));
    expect(await call('devices', { 'x-blocks-device': 'laptop-7' })).toMatchObject({ status: 200 });
    expect(await call('devices', { 'x-blocks-device': 'laptop-7' }, 'autonomous')).toMatchObject({ status: 200 });
  });

  it('leaves tenants without rules alone', async () => {
    expect(await call('unruled')).toMatchObject({ status: 200 });
    expect(await call('unruled', { 'x-blocks-device': 'anything' }, 'autonomous')).toMatchObject({ status: 200 });
  });

  it('checks the context before the scope: a refused tenant learns nothing about its scopes', async () => {
    const response = await fetch(`${blocks.urls.gateway as string}/api/v1/identity/api-keys`, {
      headers: await creds.headers('elsewhere-only', ['ai:models:read']),
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ code: 'ACCESS_DENIED', reason: 'ip_not_allowed' });
  });
});
