// `hwpsim record <case>`: write the observed outcome into a case (work in record-impl.ts, loaded on use).
import type { CommandModule } from 'yargs';
import type { Args } from './record-impl.js';

export const recordCommand: CommandModule<object, Args> = {
  command: 'record <case>',
  describe: 'Run a case on the simulator and write the observed outcome into its expectations',
  builder: (y) =>
    y
      .positional('case', { type: 'string', demandOption: true })
      .option('force', { type: 'boolean', default: false, describe: 'Record even under CI' })
      .option('kernel', { alias: 'k', type: 'string' }) as never,
  handler: async (argv) => {
    const { recordHandler } = await import('./record-impl.js');
    recordHandler(argv);
  },
};
