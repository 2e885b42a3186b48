import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadModelCatalog } from '../../../src/autonomous/ai-router/catalog.ts';
import { createRouteDecider } from '../../../src/autonomous/ai-router/decide.ts';
import { createTokenizer } from '../../../src/autonomous/ai-router/tokenizer.ts';
import type { Complexity } from '../../../src/autonomous/ai-router/types.ts';
import { AI_CONFIG_SECTION } from '../../../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../../../src/platform/config/section.ts';
import { testConfig } from '../../support/blocks.ts';

const readYaml = (name: string): unknown => parse(readFileSync(new URL(`../../../config/${name}`, import.meta.url), 'utf8'));

describe('the shipped model catalog (config/models.yaml)', () => {
  const catalog = loadModelCatalog(readYaml('models.yaml'));

  it('covers several providers and the documented task types', () => {
    expect(new Set(catalog.models.map((m) => m.provider)).size).toBeGreaterThanOrEqual(2);
    expect(catalog.taskTypes).toEqual(['chat', 'classification', 'code', 'extraction', 'reasoning', 'summarization']);
  });

  it('routes every task type and complexity with the configured expected output tokens', () => {
    const decider = createRouteDecider({
      catalog,
      tokenizer: createTokenizer(),
      expectedOutputTokens: sectionOf(testConfig(), AI_CONFIG_SECTION).expected_output_tokens,
    });
    for (const taskType of catalog.taskTypes) {
      for (const complexity of ['low', 'medium', 'high'] satisfies Complexity[]) {
        const decision = decider.decide({ task_type: taskType, complexity, context: { prompt: 'Route this request.' } });
        const chosen = catalog.getModel(decision.selected_model);
        expect(chosen?.task_types).toContain(taskType);
        expect(decision.confidence).toBe(chosen?.quality[taskType]?.[complexity]);
        expect(decision.estimated_cost).toBeGreaterThan(0);
        expect(decision.routing_reason.startsWith(`${decision.selected_model}: `)).toBe(true);
      }
    }
  });
});
