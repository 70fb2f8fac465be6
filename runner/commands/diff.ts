// `hwpsim diff [paths] [--kernel 6.1 --kernel 6.12]`: runs each case on the simulator and on the
// real kernel under QEMU with the same kernel profile, and reports where the model and the
// kernel disagree: TAP on stdout (one test point per case and kernel), agreement tables on
// stderr, JSON in reports/. Also reached by `hwpsim run --target sim,qemu`.
import type { ArgumentsCamelCase, CommandModule } from 'yargs';

export interface DiffArgs {
  paths: string[];
  kernel?: string[];
  grep?: string;
  tag?: string[];
  jobs?: number;
  timeout: number;
  seed?: number;
  'reports-dir': string;
  'pass-with-no-tests': boolean;
  quiet: boolean;
}

export const diffCommand: CommandModule<object, DiffArgs> = {
  command: 'diff [paths..]',
  describe: 'Run cases on the simulator and on a real kernel under QEMU; report where they disagree',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, default: [], describe: 'Case files, directories or globs (default: the built-in library)' })
      .option('kernel', { alias: 'k', type: 'string', array: true, describe: 'Kernel profiles to compare under (default: each case\'s machine.kernel, else every installed QEMU kernel)' })
      .option('grep', { alias: 'g', type: 'string', describe: 'Only cases whose name or path matches this regular expression' })
      .option('tag', { alias: 't', type: 'string', array: true, describe: 'Only cases with one of these tags' })
      .option('jobs', { alias: 'j', type: 'number', describe: 'QEMU boots at once (default: 2, or 1 on one CPU)' })
      .option('timeout', { type: 'number', default: 10000, describe: 'Per-case timeout in milliseconds' })
      .option('seed', { type: 'number', describe: 'Seed for generated data' })
      .option('reports-dir', { type: 'string', default: 'reports', describe: 'Where hwpsim-diff.json and hwpsim-diff.tap are written' })
      .option('pass-with-no-tests', { type: 'boolean', default: false, describe: 'Exit 0 when nothing matched' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress on stderr' }) as never,
  handler: async (argv: ArgumentsCamelCase<DiffArgs>) => {
    process.exitCode = await (await import('./diff-impl.js')).doDiff(argv);
  },
};
