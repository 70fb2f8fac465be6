/**
 * Canonical form of a record, as `mce-inject --dump` prints it (dump_mce()):
 * CPU, BANK, TSC, TIME, RIP cs:ip, MISC, ADDR, STATUS, MCGSTATUS, PROCESSOR,
 * blank line. MISC/ADDR come before STATUS, so the ADDRV/MISCV they imply
 * are replaced by the exact STATUS value on re-reading. mce-inject's dump
 * drops the injection flags and SOCKETID/APICID/MCGCAP; we print them (only
 * when set, before PROCESSOR) so that parse(print(r)) == r.
 */
import type { MceRecord } from './record.js';

const hex = (v: bigint | number): string => '0x' + v.toString(16);

export function printRecord(r: MceRecord): string {
  const lines = [
    `CPU ${r.cpu}`,
    `BANK ${r.bank}`,
    `TSC ${hex(r.tsc)}`,
    `TIME ${r.time}`,
    `RIP 0x${r.cs.toString(16).padStart(2, '0')}:${hex(r.ip)}`,
    `MISC ${hex(r.misc)}`,
    `ADDR ${hex(r.addr)}`,
    `STATUS ${hex(r.status)}`,
    `MCGSTATUS ${hex(r.mcgStatus)}`,
  ];
  if (r.socketId) lines.push(`SOCKETID ${r.socketId}`);
  if (r.apicId) lines.push(`APICID ${r.apicId}`);
  if (r.mcgCap) lines.push(`MCGCAP ${hex(r.mcgCap)}`);
  if (r.context === 'irq') lines.push('IN_IRQ');
  if (r.context === 'process') lines.push('IN_PROC');
  if (r.raise === 'poll') lines.push('POLL');
  if (r.raise === 'excp') lines.push('EXCP');
  if (r.noBroadcast) lines.push('NOBROADCAST');
  if (r.irqBroadcast) lines.push('IRQBROADCAST');
  if (r.nmiBroadcast) lines.push('NMIBROADCAST');
  if (r.hold) lines.push('HOLD');
  lines.push(`PROCESSOR ${r.cpuVendor}:${hex(r.cpuid)}`);
  return lines.join('\n') + '\n\n';
}

export function printRecords(rs: readonly MceRecord[]): string {
  return rs.map(printRecord).join('');
}
