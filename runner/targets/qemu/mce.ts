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
  // As the simulator does (runner/targets/sim/mce-extensions.ts): with a page, a record without
  // ADDR/MISC gets the page's address (ADDRV) and MISC 0x8c (MISCV: LSB 12, physical).
  const ADDRV = 1n << 58n, MISCV = 1n << 59n, VAL = 1n << 63n;
  return recs.map((r) => {
    let status = r.status;
    const fill = plan.page !== undefined && (status & VAL) !== 0n;
    if (fill && r.addr === 0n) status |= ADDRV;
    if (fill && r.misc === 0n) status |= MISCV;
    return {
      cpu: r.cpu,
      bank: r.bank,
      status,
      mcgStatus: r.mcgStatus,
      addr: r.addr !== 0n || !fill ? r.addr : phys,
      misc: r.misc !== 0n || !fill ? r.misc : 0x8cn,
    };
  });
}

/** Whether a record raises a machine check exception (QEMU raises #MC for UC errors only). */
export const raisesMc = (r: MonitorMce): boolean => (r.status & (1n << 61n)) !== 0n;

export type InjectResult = 'injected' | 'missed';

/**
 * Pauses the VM until its vCPU runs user code (CPL 3) inside the agent's spin loop (RIP within
 * [spin, spin+SPIN_BYTES) when the agent told us where the loop is), injects, and lets it go on.
 * The vCPU is only looked at while stopped, so the #MC is pending at exactly that instruction.
 * Under load many samples land in the kernel (timer ticks, the console): keep trying for up to
 * `budgetMs`. A monitor error before the injection lets the VM go on and reports 'missed' (the
 * agent asks again); after it, 'injected' (injecting twice would be a second #MC).
 */
export async function injectInUserMode(mon: Monitor, recs: MonitorMce[], spin?: bigint, budgetMs = 20_000): Promise<InjectResult> {
  const t0 = Date.now();
  for (let i = 0; Date.now() - t0 < budgetMs; i++) {
    let stopped = false;
    try {
      await mon.cmd('stop');
      stopped = true;
      const regs = await mon.cmd('info registers');
      const rip = /\bRIP=([0-9a-fA-F]+)/.exec(regs);
      const inSpin = spin === undefined || (rip !== null && BigInt(`0x${rip[1]}`) - spin >= 0n && BigInt(`0x${rip[1]}`) - spin < SPIN_BYTES);
      if (/\bCPL=3\b/.test(regs) && inSpin) {
        for (const r of recs) await mon.cmd(`mce ${r.cpu} ${r.bank} ${hex(r.status)} ${hex(r.mcgStatus)} ${hex(r.addr)} ${hex(r.misc)}`);
        await mon.cmd('cont').catch(() => mon.cmd('cont'));
        return 'injected';
      }
      await mon.cmd('cont');
      stopped = false;
    } catch {
      if (stopped) await mon.cmd('cont').catch(() => undefined);
    }
    await new Promise((res) => setTimeout(res, 3 + (i % 11)));
  }
  return 'missed';
}

/** The agent's spin loop is a few instructions in a 64-byte aligned function. */
const SPIN_BYTES = 64n;
