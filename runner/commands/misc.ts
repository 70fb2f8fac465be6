// `hwpsim list`, `hwpsim validate`, `hwpsim schema`.
import type { CommandModule } from 'yargs';
import { z } from 'zod';
import { CaseError, loadCase } from '../case/load.js';
import { CaseConfig } from '../case/schema.js';
import { discover } from '../suite.js';
import { caseId } from '../suite.js';

interface PathArgs {
  paths: string[];
}

export const listCommand: CommandModule<object, PathArgs & { tag?: string[] }> = {
  command: 'list [paths..]',
  describe: 'List the cases a run would select',
  builder: (y) => y.positional('paths', { type: 'string', array: true, default: [] }).option('tag', { alias: 't', type: 'string', array: true }) as never,
  handler: (argv) => {
    const found = discover(argv.paths);
    let n = 0;
    for (const f of found.files) {
      const id = caseId(f, found.root);
      try {
        const c = loadCase(f, found.root);
        if (argv.tag?.length && !argv.tag.some((t) => c.config.tags?.includes(t))) continue;
        process.stdout.write(`${id}${c.config.tags?.length ? `  [${c.config.tags.join(', ')}]` : ''}\n`);
      } catch {
        process.stdout.write(`${id}  (invalid)\n`);
      }
      n++;
    }
    process.exitCode = n ? 0 : 4;
  },
};

export const validateCommand: CommandModule<object, PathArgs> = {
  command: 'validate [paths..]',
  describe: 'Check case files without running them (exit 2 on the first invalid one)',
  builder: (y) => y.positional('paths', { type: 'string', array: true, default: [] }) as never,
  handler: (argv) => {
    const found = discover(argv.paths);
    if (found.missing.length) {
      process.stderr.write(`hwpsim: no such case file or directory: ${found.missing.join(', ')}\n`);
      process.exitCode = 2;
      return;
    }
    let bad = 0;
    for (const f of found.files) {
      try {
        loadCase(f, found.root);
      } catch (e) {
        bad++;
        process.stderr.write(`${e instanceof CaseError ? e.message : `${f}:1:1: ${(e as Error).message}`}\n`);
      }
    }
    if (!found.files.length) process.exitCode = 4;
    else if (bad) process.exitCode = 2;
    else process.stderr.write(`${found.files.length} case(s) valid\n`);
  },
};

export function caseJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(CaseConfig, { target: 'draft-7', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...s, title: 'hwpsim case', $id: 'https://hwpsim.invalid/case.schema.json' };
}

export const schemaCommand: CommandModule = {
  command: 'schema',
  describe: 'Print the JSON Schema of the case format (for yaml-language-server)',
  handler: () => {
    process.stdout.write(`${JSON.stringify(caseJsonSchema(), null, 2)}\n`);
  },
};
