// `hwpsim run [paths|globs]`: run cases and report. The options are declared here; the work is
// in run-impl.ts, loaded only when the command runs, so `hwpsim --help` and argument errors do
// not pay for the model, the YAML parser and the schema.
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

export interface RunArgs {
  paths: string[];
  grep?: string;
  tag?: string[];
  jobs?: number;
  shard?: string;
  bail: boolean;
  timeout: number;
  seed?: number;
  reporter: string[];
  'tap-version': number;
  kernel?: string[];
  'pass-with-no-tests': boolean;
  'check-invariants': boolean;
  coverage: boolean;
  shuffle: boolean;
  target: string;
  'reports-dir': string;
  quiet: boolean;
}

export function runOptions<T>(y: Argv<T>): Argv<T & RunArgs> {
  return y
    .positional('paths', { type: 'string', array: true, default: [], describe: 'Case files, directories or globs (default: the built-in library)' })
    .option('grep', { alias: 'g', type: 'string', describe: 'Only cases whose name or path matches this regular expression' })
    .option('tag', { alias: 't', type: 'string', array: true, describe: 'Only cases with one of these tags' })
    .option('jobs', { alias: 'j', type: 'number', describe: 'Worker threads (default: the CPU count)' })
    .option('shard', { type: 'string', describe: 'Run shard i of n (i/n), for CI matrices' })
    .option('bail', { alias: 'b', type: 'boolean', default: false, describe: 'Stop after the first failing case' })
    .option('timeout', { type: 'number', default: 10000, describe: 'Per-case timeout in milliseconds' })
    .option('seed', { type: 'number', describe: 'Seed for --shuffle and generated data (printed on every run)' })
    .option('reporter', { alias: 'r', type: 'string', array: true, default: ['tap'], describe: 'tap, junit or json (repeatable); tap goes to stdout and reports/, the others to reports/' })
    .option('tap-version', { type: 'number', choices: [13, 14], default: 14, describe: 'TAP 14 with subtests, or flat TAP 13 (for prove)' })
    .option('kernel', { alias: 'k', type: 'string', array: true, describe: 'Run every case under these kernel profiles (a matrix when several)' })
    .option('pass-with-no-tests', { type: 'boolean', default: false, describe: 'Exit 0 when nothing matched' })
    .option('check-invariants', { type: 'boolean', default: false, describe: 'Check the model invariants after every step' })
    .option('coverage', { type: 'boolean', default: false, describe: 'Report which error_states[] and severity rows the run hit' })
    .option('shuffle', { type: 'boolean', default: false, describe: 'Run cases in a random order (from --seed); reports keep the sorted order' })
    .option('target', { type: 'string', default: 'sim', describe: 'sim (built-in simulator), qemu (a real kernel), or sim,qemu (compare them, as hwpsim diff)' })
    .option('reports-dir', { type: 'string', default: 'reports', describe: 'Where report files are written' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'No progress on stderr' }) as Argv<T & RunArgs>;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run [paths..]',
  describe: 'Run cases (default: the built-in library) and print TAP',
  builder: (y) => runOptions(y),
  handler: async (argv: ArgumentsCamelCase<RunArgs>) => {
    process.exitCode = await (await import('./run-impl.js')).doRun(argv);
  },
};
