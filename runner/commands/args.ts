// Argument checks shared by run, diff and list: each returns the parsed value, or writes the
// one-line usage error and returns undefined (the command then exits 2).
import { PROFILES, profileFor } from '../../tsrc/kernel/profiles.js';

function usage(msg: string): undefined {
  process.stderr.write(`hwpsim: ${msg}\n`);
  return undefined;
}

/** --grep as a RegExp (null when not given). */
export function grepArg(grep: string | undefined): RegExp | null | undefined {
  if (!grep) return null;
  try {
    return new RegExp(grep);
  } catch {
    return usage(`--grep is not a valid regular expression: ${grep}`);
  }
}

/** --kernel values (repeatable, comma-separated), each a known profile. */
export function kernelsArg(kernel: string[] | undefined): string[] | undefined {
  const kernels = (kernel ?? []).flatMap((k) => k.split(',')).filter(Boolean);
  for (const k of kernels) if (!profileFor(k)) return usage(`unknown kernel profile "${k}" (known: ${[...PROFILES.keys()].join(', ')})`);
  return kernels;
}
