// `hwpsim list`, `hwpsim validate`, `hwpsim schema` (the work is in misc-impl.ts, loaded on use).
import type { CommandModule } from 'yargs';
import type { ListArgs, PathArgs } from './misc-impl.js';

export const listCommand: CommandModule<object, ListArgs> = {
  command: 'list [paths..]',
  describe: 'List the cases a run would select (with --grep, --tag and --shard as for run)',
  builder: (y) =>
    y
      .positional('paths', { type: 'string', array: true, default: [], describe: 'Case files, directories or globs (default: the built-in library)' })
      .option('tag', { alias: 't', type: 'string', array: true, describe: 'Only cases with one of these tags' })
      .option('grep', { alias: 'g', type: 'string', describe: 'Only cases whose name or path matches this regular expression' })
      .option('shard', { type: 'string', describe: 'Only shard i of n (i/n)' }) as never,
  handler: async (argv) => {
    const { listHandler } = await import('./misc-impl.js');
    await listHandler(argv);
  },
};

export const validateCommand: CommandModule<object, PathArgs> = {
  command: 'validate [paths..]',
  describe: 'Check case files without running them: one line per invalid case, exit 2 if any',
  builder: (y) => y.positional('paths', { type: 'string', array: true, default: [] }) as never,
  handler: async (argv) => {
    const { validateHandler } = await import('./misc-impl.js');
    validateHandler(argv);
  },
};

export const schemaCommand: CommandModule = {
  command: 'schema',
  describe: 'Print the JSON Schema of the case format (for yaml-language-server)',
  handler: async () => {
    const { schemaHandler } = await import('./misc-impl.js');
    schemaHandler();
  },
};
