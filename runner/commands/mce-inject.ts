/**
 * `hwpsim mce-inject --dump FILE...`: parse mce-inject input files and print
 * every record in canonical `--dump` form. A parse error prints one line
 * `FILE:LINE:COL: message` on stderr and sets exit code 2. Without --dump
 * there is nothing to inject into from the command line (injection runs
 * inside a case against a target), so that is a usage error too.
 */
import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { MceParseError, parseMce, printRecords } from '../../tsrc/tools/mce-inject/index.js';

export interface DumpIo {
  out: (s: string) => void;
  err: (s: string) => void;
  read?: (file: string) => Promise<string>;
}

/** Returns the exit code (0 ok, 2 parse/usage/read error); output goes through `io`. */
export async function dumpFiles(files: readonly string[], io: DumpIo): Promise<number> {
  const read = io.read ?? ((f: string) => readFile(f, 'utf8'));
  let text = '';
  for (const file of files) {
    let src: string;
    try {
      src = await read(file);
    } catch (e) {
      io.err(`${file}: ${e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
    try {
      text += printRecords(parseMce(src));
    } catch (e) {
      if (e instanceof MceParseError) {
        io.err(`${file}:${e.line}:${e.col}: ${e.detail}\n`);
        return 2;
      }
      throw e;
    }
  }
  io.out(text);
  return 0;
}

interface Args {
  dump: boolean;
  files: string[];
}

export const command: CommandModule<object, Args> = {
  command: 'mce-inject [files..]',
  describe: 'parse mce-inject record files; --dump prints them in canonical form',
  builder: (y: Argv<object>) =>
    y
      .option('dump', { type: 'boolean', default: false, describe: 'print the parsed records instead of injecting' })
      .positional('files', { type: 'string', array: true, default: [] as string[], describe: 'mce-inject input files' }) as unknown as Argv<Args>,
  handler: async (argv) => {
    if (!argv.dump) {
      process.stderr.write('mce-inject: only --dump is available from the command line (inject from a case)\n');
      process.exitCode = 2;
      return;
    }
    if (argv.files.length === 0) {
      process.stderr.write('mce-inject: no input files\n');
      process.exitCode = 2;
      return;
    }
    const code = await dumpFiles(argv.files, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
    if (code !== 0) process.exitCode = code;
  },
};

export default command;
