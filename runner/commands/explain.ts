// `hwpsim explain <case>`: the case step by step (the work is in explain-impl.ts, loaded on use).
import type { CommandModule } from 'yargs';
import type { Args } from './explain-impl.js';

export const explainCommand: CommandModule<object, Args> = {
  command: 'explain <case>',
  describe: 'Run one case on the simulator and explain every decision the model took',
  builder: (y) => y.positional('case', { type: 'string', demandOption: true }).option('kernel', { alias: 'k', type: 'string' }) as never,
  handler: async (argv) => {
    const { explainHandler } = await import('./explain-impl.js');
    explainHandler(argv.case, argv.kernel);
  },
};
