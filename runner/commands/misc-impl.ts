// `hwpsim list`, `hwpsim validate`, `hwpsim schema`.
import { z } from 'zod';
import { CaseError, loadCase } from '../case/load.js';
import { CaseConfig } from '../case/schema.js';
import { discover, parseShard } from '../suite.js';
import { plan } from '../run.js';

export interface PathArgs {
  paths: string[];
}

export interface ListArgs extends PathArgs {
  tag?: string[];
  grep?: string;
  shard?: string;
}



export function caseJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(CaseConfig, { target: 'draft-7', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...s, title: 'hwpsim case', $id: 'https://hwpsim.invalid/case.schema.json' };
}

export async function listHandler(argv: ListArgs): Promise<void> {
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
    const planned = await plan({ files: found.files, root: found.root, kernels: [undefined], ...(grep ? { grep } : {}), ...(argv.tag ? { tags: argv.tag } : {}), ...(shard ? { shard } : {}) });
    for (const p of planned) {
      const tags = p.loaded?.config.tags ?? [];
      process.stdout.write(`${p.id}${p.loaded ? (tags.length ? `  [${tags.join(', ')}]` : '') : '  (invalid)'}\n`);
    }
    process.exitCode = planned.length ? 0 : 4;
  }

export function validateHandler(argv: PathArgs): void {
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
  }

export function schemaHandler(): void {
    process.stdout.write(`${JSON.stringify(caseJsonSchema(), null, 2)}\n`);
  }
