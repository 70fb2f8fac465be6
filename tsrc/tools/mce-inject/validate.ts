/**
 * Check records against the machine they will be injected into, with
 * mce-inject's own messages (validate_mce() in mce-inject.c): the CPU must be
 * online and the bank must not exceed the highest bank the CPU has.
 */
import type { MceRecord } from './record.js';

/** The part of a Machine this needs (hw/machine.ts's Machine satisfies it). */
export interface InjectTarget {
  cpus: { isOnline(cpu: number): boolean };
  mca: { bankCount: number };
}

export interface RecordError {
  /** Index of the record in the input. */
  index: number;
  message: string;
}

export function validateRecords(records: readonly MceRecord[], target: InjectTarget): RecordError[] {
  const errors: RecordError[] = [];
  const maxBank = target.mca.bankCount - 1;
  records.forEach((r, index) => {
    if (!target.cpus.isOnline(r.cpu)) errors.push({ index, message: `cpu ${r.cpu} not online` });
    if (r.bank > maxBank) errors.push({ index, message: `larger machine check bank ${r.bank} than supported on this cpu (${maxBank})` });
  });
  return errors;
}
