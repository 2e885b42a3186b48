import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createPlatformEgress } from '../../../src/platform/net/egress-policies.ts';
import { loadConfig } from '../../../src/platform/config/load-config.ts';
import { sectionOf } from '../../../src/platform/config/section.ts';
import { createRegistry } from '../../../src/modules.ts';
import { aiRouterModule, AI_CONFIG_SECTION } from '../../../src/autonomous/ai-router/index.ts';
import type { RunningBlocks } from '../../../src/start.ts';
import { CONFIG_DIR, startTestBlocks, tempDir } from '../../support/blocks.ts';
import { exampleModule } from '../../support/example-module/index.ts';
import { intakeModule } from '../../support/intake-module/index.ts';
import { catalogModel } from '../../support/catalog-model.ts';
import { withMigratedPglite } from '../../support/templates.ts';

const registry = createRegistry([exampleModule, intakeModule]);

describe('the platform egress policy and a module’s override', () => {
  it('gives a module without an override the platform’s policy itself', () => {
    const egress = createPlatformEgress({ allow_private: false, allow: ['10.1.0.0/16'] });
    expect(egress.of('webhooks', undefined)).toBe(egress.of('mcp', undefined));
    expect(egress.of('webhooks', undefined).checkUrl('http://10.1.2.3/hook')).toBeNull();
    expect(egress.checkUrl('http://10.2.0.1/hook')).toMatch(/private address 10\.2\.0\.1; egress allows public addresses only/);
  });

  it('replaces the platform’s policy with an override, which may narrow it or widen it', () => {
    const egress = createPlatformEgress({ allow_private: false, allow: ['10.1.0.0/16'] });
    // Narrower: the platform allows 10.1/16, this module nothing private at all; what it leaves out is strict, not inherited.
    const narrow = egress.of('webhooks', {});
    expect(narrow.checkUrl('http://10.1.2.3/hook')).toMatch(/private address 10\.1\.2\.3; webhooks\.egress allows public addresses only/);
    // Wider: one module may reach a host the platform's policy does not.
    const wide = egress.of('ai', { allow: ['127.0.0.1'] }, 'ai.egress');
    expect(wide.checkUrl('http://127.0.0.1:11434/v1')).toBeNull();
    expect(wide.checkUrl('http://10.1.2.3/v1')).toMatch(/ai\.egress allows public addresses only/);
    expect(egress.checkUrl('http://127.0.0.1:11434/v1')).toMatch(/loopback/);
    // Made once per module.
    expect(egress.of('ai', { allow: ['10.9.9.9'] })).toBe(wide);
    expect(egress.of('lab', { allow_private: true }).checkUrl('http://localhost:9/')).toBeNull();
  });

  it('names the setting a bad allow entry comes from', () => {
    expect(() => createPlatformEgress({ allow_private: false, allow: ['10.0.0.0/33'] })).toThrow(/^egress\.allow\[0\]/);
    const egress = createPlatformEgress({ allow_private: false, allow: [] });
    expect(() => egress.of('intake', { allow: ['ok.example', 'http://x'] }, 'intake.egress')).toThrow(/^intake\.egress\.allow\[1\]/);
  });

  it('closes every policy it made, and their connections', async () => {
    const egress = createPlatformEgress({ allow_private: true, allow: [] });
    const override = egress.of('lab', { allow_private: true });
    const dispatchers = [egress.dispatcher, override.dispatcher];
    await egress.close();
    for (const dispatcher of dispatchers) expect((dispatcher as unknown as { destroyed: boolean; closed: boolean }).closed).toBe(true);
  });
});

describe('egress in the configuration', () => {
  const load = (env: Record<string, string>, overrides: Record<string, unknown> = {}) =>
    loadConfig({
      configDir: CONFIG_DIR,
      env: { BLOCKS_DATA_DIR: '/tmp/blocks-egress-config', ...env },
      overrides,
      sections: registry.configSections,
    });

  it('is a kernel section, strict by default and in production, with no AI override unless one is set', () => {
    for (const env of ['development', 'test', 'production']) {
      const config = load({ BLOCKS_ENV: env, BLOCKS_KEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') });
      expect(config.egress).toEqual({ allow_private: false, allow: [] });
      expect(sectionOf(config, AI_CONFIG_SECTION).egress).toBeUndefined();
    }
  });

  it('keeps ai.egress working as the AI router’s override, partial or whole', () => {
    expect(sectionOf(load({ BLOCKS_ENV: 'test' }, { ai: { egress: { allow_private: true } } }), AI_CONFIG_SECTION).egress).toEqual({
      allow_private: true,
    });
    expect(() => load({ BLOCKS_ENV: 'test' }, { ai: { egress: { allow: 'everything' } } })).toThrow(/ai\/egress\/allow|ai\.egress\.allow/);
    expect(() => load({ BLOCKS_ENV: 'test' }, { egress: { allow_private: 'yes' } })).toThrow(/egress/);
    expect(() => load({ BLOCKS_ENV: 'test' }, { egress: { allow: [], extra: 1 } })).toThrow(/egress/);
  });
});

describe('modules of a running Blocks get the platform’s policy or their own', () => {
  const dir = tempDir('blocks-egress');
  let blocks: RunningBlocks;
  const model = (name: string, baseUrl: string) =>
    catalogModel(name, { provider: 'openai', deployments: [{ id: 'mine', provider: 'openai', base_url: baseUrl }] });

  beforeAll(async () => {
    const config = loadConfig({
      configDir: CONFIG_DIR,
      env: { BLOCKS_ENV: 'test', BLOCKS_DATA_DIR: withMigratedPglite(join(dir.path, 'data')) },
      // The platform allows one private network; the intake module replaces that with loopback alone; the AI router sets nothing.
      overrides: { egress: { allow_private: false, allow: ['10.1.0.0/16'] }, intake: { egress: { allow: ['127.0.0.1'] } } },
      sections: registry.configSections,
    });
    blocks = await startTestBlocks({ config, registry });
  }, 60_000);
  afterAll(async () => {
    await blocks?.close();
    dir.remove();
  });

  it('hands a module with an override its own policy, and the others the platform’s', () => {
    const intake = blocks.modules.use(intakeModule).egress;
    expect(intake.setting).toBe('intake.egress');
    expect(intake.checkUrl('http://127.0.0.1:9/')).toBeNull();
    expect(intake.checkUrl('http://10.1.2.3/')).toMatch(/private address/);
    expect(blocks.platform.egress.checkUrl('http://10.1.2.3/')).toBeNull();
    expect(blocks.platform.egress.checkUrl('http://127.0.0.1:9/')).toMatch(/loopback/);
  });

  it('checks AI deployments against the platform’s policy when ai.egress is absent', async () => {
    const { catalog } = blocks.modules.use(aiRouterModule);
    const context = { correlationId: 'egress-test' };
    await expect(catalog.create(model('egress-allowed', 'http://10.1.2.3/v1'), context)).resolves.toMatchObject({
      model: 'egress-allowed',
    });
    await expect(catalog.create(model('egress-refused', 'http://127.0.0.1:11434/v1'), context)).rejects.toMatchObject({
      code: 'INVALID_MODEL',
      detail: expect.stringMatching(
        /deployments\[0\]\.base_url: points at a loopback address 127\.0\.0\.1; egress allows public addresses only/,
      ),
    });
  });
});
