import { describe, it, expect } from 'vitest';
import { loadConfig, ConfigError } from '../../../src/platform/config/load-config.ts';
import { CONFIG_DIR } from '../../support/blocks.ts';
import { AI_CONFIG_SECTION } from '../../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../../src/platform/config/section.ts';
import { testRegistry } from '../../support/registry.ts';

const load = (env: Record<string, string>) => loadConfig({ configDir: CONFIG_DIR, env, sections: testRegistry.configSections });

describe('configuration', () => {
  it('carries the spec production values, durations in milliseconds', () => {
    const config = load({ BLOCKS_ENV: 'production' });
    expect(config.env).toBe('production');
    expect(config.autonomous_blocks).toEqual({
      replicas: 3,
      resources: { cpu: '1000m', memory: '2Gi' },
      config: { ai_router_timeout: 30_000, error_retry_attempts: 3 },
    });
    expect(config.collaborative_blocks).toEqual({
      replicas: 3,
      resources: { cpu: '1000m', memory: '2Gi' },
      config: { workflow_timeout: 300_000, sync_batch_size: 100 },
    });
    expect(config.resilience).toEqual({ failure_threshold: 5, recovery_timeout: 30_000 });
  });

  it('takes infrastructure from the well-known variables and any key from BLOCKS__ variables', () => {
    const config = load({
      DATABASE_URL: 'postgres://db/x',
      NATS_URL: 'nats://n:4222',
      REDIS_URL: 'redis://r:6379',
      BLOCKS_DATA_DIR: '/var/blocks',
      BLOCKS_GATEWAY_PORT: '9000',
      BLOCKS__outbox__batch_size: '7',
      BLOCKS__outbox__poll_interval: '2s',
      BLOCKS__cache__key_prefix: 'a:b:',
    });
    expect(config.database.url).toBe('postgres://db/x');
    expect(config.bus.nats_url).toBe('nats://n:4222');
    expect([config.cache.redis_url, config.bus.redis_url]).toEqual(['redis://r:6379', 'redis://r:6379']);
    expect(config.data_dir).toBe('/var/blocks');
    expect(config.services.gateway.port).toBe(9000);
    expect(config.outbox).toEqual({ batch_size: 7, poll_interval: 2000, max_attempts: 10 });
    expect(config.cache.key_prefix).toBe('a:b:');
    expect(sectionOf(config, AI_CONFIG_SECTION).catalog_file).toMatch(/\/config\/models\.yaml$/);
  });

  it('names every bad key in one error', () => {
    let error: unknown;
    try {
      load({
        BLOCKS__bus__max_deliver: '0',
        BLOCKS__outbox__poll_interval: 'soon',
        BLOCKS__http__bogus: '1',
        LOG_LEVEL: 'loud',
        BLOCKS_GATEWAY_PORT: 'eighty',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('bus.max_deliver: must be >= 1');
    expect(message).toContain('outbox.poll_interval: must be a duration such as 30s');
    expect(message).toContain('http.bogus: unknown key');
    expect(message).toContain('log.level: must be one of fatal, error, warn, info, debug, trace, silent');
    expect(message).toContain('services.gateway.port');
  });

  it('is frozen so nothing changes it after start', () => {
    const config = load({});
    expect(() => {
      (config.outbox as { batch_size: number }).batch_size = 1;
    }).toThrow(TypeError);
  });
});
