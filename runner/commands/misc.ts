// `hwpsim list`, `hwpsim validate`, `hwpsim schema`.
import type { CommandModule } from 'yargs';
import { z } from 'zod';
import { CaseError, loadCase } from '../case/load.js';
import { CaseConfig } from '../case/schema.js';
import { discover, parseShard } from '../suite.js';
import { plan } from '../run.js';

interface PathArgs {
  paths: string[];
}

interface ListArgs extends PathArgs {
  tag?: string[];
  grep?: string;
  shard?: string;
}

export const listCommand: CommandModule<object, ListArgs> = {
  command: 'list [paths..]',
  describe: 'List the cases a run would select (with --grep, --tag and --shard as for run)',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, default: [], describe: 'Case files, directories or globs (default: the built-in library)' })
      .option('tag', { alias: 't', type: 'string', array: true, describe: 'Only cases with one of these tags' })
      .option('grep', { alias: 'g', type: 'string', describe: 'Only cases whose name or path matches this regular expression' })
      .option('shard', { type: 'string', describe: 'Only shard i of n (i/n)' }) as never,
  handler: (argv) => {
    const shard = argv.shard ? parseShard(argv.shard) : undefined;
    if (argv.shard && !shard) {
      process.stderr.write(`hwpsim: --shard must be i/n with 1 <= i <= n, got "${argv.shard}"\n`);
      process.exitCode = 2;
      return;
    }
    let grep: RegExp | undefined;
    try {
      grep = argv.grep ? new RegExp(argv.grep) : undefined;
    } catch {
      process.stderr.write(`hwpsim: --grep is not a valid regular expression: ${argv.grep}\n`);
      process.exitCode = 2;
      return;
    }
    const found = discover(argv.paths);
    if (found.missing.length) process.stderr.write(`hwpsim: no such case file or directory: ${found.missing.join(', ')}\n`);
    const planned = plan({ files: found.files, root: found.root, kernels: [undefined], ...(grep ? { grep } : {}), ...(argv.tag ? { tags: argv.tag } : {}), ...(shard ? { shard } : {}) });
    for (const p of planned) {
      const tags = p.loaded?.config.tags ?? [];
      process.stdout.write(`${p.id}${p.loaded ? (tags.length ? `  [${tags.join(', ')}]` : '') : '  (invalid)'}\n`);
    }
    process.exitCode = planned.length ? 0 : 4;
  },
};

export const validateCommand: CommandModule<object, PathArgs> = {
  command: 'validate [paths..]',
  describe: 'Check case files without running them: one line per invalid case, exit 2 if any',
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
