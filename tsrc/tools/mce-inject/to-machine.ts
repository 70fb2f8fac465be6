/**
 * Turn one mce-inject injection (held records + trigger) into what the
 * simulated machine should receive, following do_inject_mce() in
 * mce-inject.c: the trigger's CPU gets the trigger, CPUs with a held record
 * get it, every other online CPU gets a synthetic broadcast record
 * (MCG_STATUS = trigger's MCIP, plus RIPV if the trigger is UC; STATUS = only
 * the trigger's UC bit, so the kernel finds nothing valid) unless NOBROADCAST
 * — and a non-exception trigger is never broadcast. The values are fake MSR
 * contents, so the machine writes them raw and only the listed CPUs enter.
 */
import type { CpuContext } from '../../hw/cpu.js';
import type { Delivery, ErrorRecord, RaiseOptions } from '../../hw/machine.js';
import { isException } from './record.js';
import type { Injection, MceRecord } from './record.js';

const MCG_STATUS_RIPV = 1n;
const MCG_STATUS_MCIP = 4n;
const MCI_STATUS_UC = 1n << 61n;

export interface MachineInjection {
  records: ErrorRecord[];
  options: RaiseOptions;
  /** The trigger asked for other CPUs to be kicked by IRQ rather than NMI (IRQBROADCAST). */
  kick: 'nmi' | 'irq' | 'none';
}

function contextOf(r: MceRecord): CpuContext | undefined {
  // IN_IRQ: raised from an interrupt handler; IN_PROC: from the injecting task in the kernel.
  return r.context === 'irq' ? 'irq' : r.context === 'process' ? 'kernel' : undefined;
}

function toRecord(r: MceRecord): ErrorRecord {
  const delivery: Delivery = isException(r) ? 'exception' : 'poll';
  const out: ErrorRecord = { cpu: r.cpu, bank: r.bank, status: r.status, addr: r.addr, misc: r.misc, mcgStatus: r.mcgStatus, ip: r.ip, cs: r.cs, delivery };
  const ctx = contextOf(r);
  if (ctx) out.context = ctx;
  return out;
}

export function injectionToMachine(inj: Injection, onlineCpus: readonly number[]): MachineInjection {
  const trig = inj.trigger;
  const excp = isException(trig);
  const noBroadcast = trig.noBroadcast || !excp;
  const held = new Map(inj.records.filter((r) => r !== trig).map((r) => [r.cpu, r]));
  const records: ErrorRecord[] = [];
  let hasBystander = false;
  for (const cpu of onlineCpus) {
    if (cpu === trig.cpu) {
      records.push(toRecord(trig));
    } else if (held.has(cpu)) {
      records.push(toRecord(held.get(cpu)!));
    } else if (!noBroadcast) {
      hasBystander = true;
      records.push({
        cpu, bank: 0,
        status: trig.status & MCI_STATUS_UC,
        mcgStatus: (trig.mcgStatus & MCG_STATUS_MCIP) | ((trig.status & MCI_STATUS_UC) !== 0n ? MCG_STATUS_RIPV : 0n),
        delivery: 'exception',
      });
    }
  }
  const kick = !hasBystander ? 'none' : trig.irqBroadcast ? 'irq' : 'nmi';
  return { records, options: { scope: 'targeted', write: 'raw', delivery: 'poll' }, kick };
}
