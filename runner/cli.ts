// The hwpsim command line (yargs). Exit codes: 0 passed, 1 failures, 2 usage or invalid case,
// 3 internal error, 4 nothing matched, 130 interrupted.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { command as mceInjectCommand } from './commands/mce-inject.js';
import { explainCommand } from './commands/explain.js';
import { recordCommand } from './commands/record.js';
import { runCommand, runOptions } from './commands/run.js';
import { listCommand, validateCommand, schemaCommand } from './commands/misc.js';
import { diffCommand } from './commands/diff.js';

export const EXIT = { ok: 0, failures: 1, usage: 2, internal: 3, nothing: 4, interrupted: 130 } as const;

function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '..', 'package.json'), join(here, '..', '..', 'package.json')]) {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    } catch {
      /* try next */
    }
  }
  return '0.0.0';
}

export function buildCli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('hwpsim')
    .usage('$0 <command> [options]\n\nFault-injection test suites for Linux hardware memory errors (hwpoison / MCA recovery).')
    .command(runCommand)
    .command(listCommand)
    .command(validateCommand)
    .command(schemaCommand)
    .command(explainCommand)
    .command(recordCommand)
    .command(mceInjectCommand)
    .command(diffCommand)
    .demandCommand(1, 'Give a command: run, list, validate, schema, explain, record or mce-inject.')
    .strict()
    .version(version())
    .help()
    .alias('h', 'help')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) {
        process.stderr.write(`hwpsim: internal error: ${err.message}\n`);
        process.exit(EXIT.internal);
      }
      process.stderr.write(`hwpsim: ${msg}\n${'\n'}Run "hwpsim --help" for usage.\n`);
      void y;
      process.exit(EXIT.usage);
    });
}

export async function main(argv = hideBin(process.argv)): Promise<void> {
  try {
    await buildCli(argv).parseAsync();
  } catch (e) {
    process.stderr.write(`hwpsim: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = EXIT.internal;
  }
}

export { runOptions };
