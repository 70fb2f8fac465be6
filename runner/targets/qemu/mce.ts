// Injecting machine checks through the QEMU monitor's `mce` command, only while the vCPU runs
// user code (an action-required #MC in kernel mode panics the guest).
import { parseMce } from '../../../tsrc/tools/mce-inject/index.js';
import type { McePlan } from './program.js';
import type { Monitor } from './vm.js';

export interface MonitorMce {
  cpu: number;
  bank: number;
  status: bigint;
  mcgStatus: bigint;
  addr: bigint;
  misc: bigint;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The records of an mce step, with {phys:REF} templates and the step's page filled in. */
export function planRecords(plan: McePlan, phys: bigint, physOf: (ref: string) => bigint | undefined): MonitorMce[] {
  const text = (plan.records ?? '').replace(/\{phys:([^}]+)\}/g, (_m, ref: string) => hex(physOf(ref) ?? phys));
  const recs = parseMce(text).filter((r) => r.status !== 0n);
  return recs.map((r) => ({
    cpu: r.cpu,
    bank: r.bank,
    status: r.status,
    mcgStatus: r.mcgStatus,
    addr: r.addr !== 0n || !plan.page ? r.addr : phys,
    misc: r.misc !== 0n || !plan.page ? r.misc : 0x8cn,
  }));
}

/** Pauses the VM until it is in user mode (CPL 3), injects, and lets it go on. */
export async function injectInUserMode(mon: Monitor, recs: MonitorMce[], tries = 400): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    await mon.cmd('stop');
    const regs = await mon.cmd('info registers');
    if (/\bCPL=3\b/.test(regs)) {
      for (const r of recs) await mon.cmd(`mce ${r.cpu} ${r.bank} ${hex(r.status)} ${hex(r.mcgStatus)} ${hex(r.addr)} ${hex(r.misc)}`);
      await mon.cmd('cont');
      return true;
    }
    await mon.cmd('cont');
    await new Promise((res) => setTimeout(res, 5 + (i % 7)));
  }
  return false;
}
