// npm run eval:router -- <file.jsonl> [--catalog <models.yaml>] [--strong <model>] [--json]
// Replays a labelled dataset through the AI router's decider and prints quality kept against
// always using the strong model and the cost saved, the way RouteLLM reports it.
// Format and figures: docs/router-evaluation.md.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/platform/config/load-config.ts';
import { loadModelCatalog } from '../src/autonomous/ai-router/catalog.ts';
import { createTokenizer } from '../src/autonomous/ai-router/tokenizer.ts';
import { createRouteDecider } from '../src/autonomous/ai-router/decide.ts';
import {
  evaluateRouter,
  parseEvalDataset,
  type EvalComparison,
  type EvalItem,
  type EvalNote,
  type RouterEvaluation,
} from '../src/autonomous/ai-router/evaluation.ts';
import { AI_CONFIG_SECTION } from '../src/autonomous/ai-router/index.ts';
import { sectionOf } from '../src/platform/config/section.ts';
import { createRegistry } from '../src/modules.ts';

const USAGE = 'usage: npm run eval:router -- <file.jsonl> [--catalog <models.yaml>] [--strong <model>] [--json]';

function parseCommandLine(): { file: string; flags: { catalog?: string; strong?: string; json: boolean } } | undefined {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: { catalog: { type: 'string' }, strong: { type: 'string' }, json: { type: 'boolean', default: false } },
    });
  } catch (error) {
    console.error((error as Error).message);
    return undefined;
  }
  const [file, ...extra] = args.positionals;
  return file === undefined || extra.length > 0 ? undefined : { file, flags: args.values };
}

async function run(file: string, flags: { catalog?: string; strong?: string; json: boolean }): Promise<void> {
  const config = loadConfig({
    configDir: new URL('../config', import.meta.url).pathname,
    env: {},
    sections: createRegistry().configSections,
  });
  const ai = sectionOf(config, AI_CONFIG_SECTION);
  const catalogFile = flags.catalog ?? ai.catalog_file;
  const catalog = loadModelCatalog(parseYaml(readFileSync(catalogFile, 'utf8')));
  const expected = ai.expected_output_tokens;
  const tokenizer = createTokenizer();
  // The configured weights, without exploration: a replay must be repeatable.
  const decider = createRouteDecider({
    catalog,
    tokenizer,
    expectedOutputTokens: expected,
    routing: { ...ai.routing, exploration: 0 },
  });

  const dataset = parseEvalDataset(readFileSync(file, 'utf8'), (model) => catalog.getModel(model) !== undefined);
  // Without a measured cost, an outcome costs what the catalog charges for the prompt's tokens plus
  // the item's output tokens (or the router's expected output for its task type).
  const estimateCost = (model: string, item: EvalItem): number => {
    const spec = catalog.getModel(model);
    if (spec === undefined) throw new Error(`model '${model}' is not in the catalog`);
    const output = item.output_tokens ?? expected[item.task_type] ?? expected.default ?? 0;
    return (tokenizer.countTokens(item.prompt) * spec.input_price_per_mtok + output * spec.output_price_per_mtok) / 1e6;
  };
  if (flags.strong !== undefined && catalog.getModel(flags.strong) === undefined) {
    throw new Error(`--strong ${flags.strong}: model not in the catalog`);
  }
  const result = await evaluateRouter({
    items: dataset.items,
    decide: (request) => decider.decide(request),
    estimateCost,
    ...(flags.strong === undefined ? {} : { strongModel: flags.strong }),
  });

  const report = {
    dataset: {
      file,
      catalog: catalogFile,
      items: dataset.items.length,
      skipped_lines: dataset.skippedLines,
      unknown_models: dataset.unknownModels,
    },
    ...result,
  };
  if (flags.json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(file, catalogFile, dataset.items.length, dataset.unknownModels, dataset.skippedLines, result));
}

const pct = (share: number | null): string => (share === null ? 'n/a' : `${(share * 100).toFixed(1)}%`);
const usd = (value: number): string => `$${value.toFixed(6)}`;
const pad = (cells: readonly string[], widths: readonly number[]): string =>
  cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');

function table(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  return rows.map((row) => pad(row, widths)).join('\n');
}

function policies(c: EvalComparison): string {
  const row = (name: string, f: { quality: number; cost: number }): string[] => [
    name,
    f.quality.toFixed(3),
    usd(f.cost),
    pct(c.strong.quality === 0 ? null : f.quality / c.strong.quality),
    pct(c.strong.cost === 0 ? null : f.cost / c.strong.cost),
  ];
  return table([
    ['policy', 'quality', 'cost', 'quality vs strong', 'cost vs strong'],
    row('router', c.router),
    row('strong', c.strong),
    row('oracle', c.oracle),
    row('cheapest', c.cheapest),
  ]);
}

function notes(title: string, list: readonly EvalNote[]): string[] {
  if (list.length === 0) return [];
  const shown = list.slice(0, 10).map((n) => `  line ${n.line} (${n.id})${n.model === undefined ? '' : ` ${n.model}`}: ${n.reason}`);
  return [`${title}: ${list.length}`, ...shown, ...(list.length > 10 ? [`  … and ${list.length - 10} more`] : [])];
}

function formatReport(
  file: string,
  catalogFile: string,
  itemCount: number,
  unknownModels: readonly EvalNote[],
  skippedLines: readonly EvalNote[],
  r: RouterEvaluation,
): string {
  const byTask = table([
    ['task type', 'items', 'router q', 'strong q', 'oracle q', 'q retained', 'cost share', 'router cost', 'strong cost'],
    ...Object.entries(r.by_task_type).map(([task, c]) => [
      task,
      String(c.items),
      c.router.quality.toFixed(3),
      c.strong.quality.toFixed(3),
      c.oracle.quality.toFixed(3),
      pct(c.quality_retained),
      pct(c.cost_share),
      usd(c.router.cost),
      usd(c.strong.cost),
    ]),
  ]);
  const routing = table([['model', 'chosen', 'share'], ...r.routing.map((m) => [m.model, String(m.count), pct(m.share)])]);
  return [
    `eval:router — ${file} (${itemCount} items) against ${catalogFile}`,
    `strong model: ${r.strong_model}; scored items: ${r.items}`,
    '',
    policies(r),
    '',
    `quality retained: ${pct(r.quality_retained)} of ${r.strong_model}'s at ${pct(r.cost_share)} of its cost ` +
      `(saved ${usd(r.cost_saved)}); performance gap recovered: ${pct(r.gap_recovered)}`,
    '',
    byTask,
    '',
    routing,
    '',
    ...notes('unlabelled choice (not scored)', r.unlabelled_choice),
    ...notes('strong model unlabelled (not scored)', r.strong_unlabelled),
    ...notes('router errors (not scored)', r.router_errors),
    ...notes('outcomes of unknown models (dropped)', unknownModels),
    ...notes('lines skipped', skippedLines),
  ].join('\n');
}

const command = parseCommandLine();
if (command === undefined) {
  console.error(USAGE);
  process.exitCode = 2;
} else {
  try {
    await run(command.file, command.flags);
  } catch (error) {
    // A bad dataset line or catalog is the user's to fix: its message, not a stack trace.
    console.error(`eval:router: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
