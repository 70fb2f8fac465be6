/**
 * x86 machine-check MSR layouts (Intel SDM vol. 3B ch. 15 "Machine-Check
 * Architecture"; Linux arch/x86/include/asm/mce.h). Everything is a BigInt
 * because the registers are 64 bits wide. Only named constants and small
 * pure encode/decode helpers live here: no state.
 */

const bit = (n: number): bigint => 1n << BigInt(n);
const field = (lo: number, width: number): bigint => ((1n << BigInt(width)) - 1n) << BigInt(lo);

/** Mask a value to an unsigned 64-bit register. */
export const U64_MASK = (1n << 64n) - 1n;
export const u64 = (v: bigint): bigint => v & U64_MASK;

// ---------------------------------------------------------------- IA32_MCG_CAP (0x179)
export const MSR_IA32_MCG_CAP = 0x179;
export const MCG_BANKCNT_MASK = 0xffn; // bits 7:0: number of banks
export const MCG_CTL_P = bit(8); // IA32_MCG_CTL present
export const MCG_EXT_P = bit(9); // extended state registers present
export const MCG_CMCI_P = bit(10); // corrected machine-check interrupt supported
export const MCG_TES_P = bit(11); // threshold-based error status present
export const MCG_EXT_CNT_SHIFT = 16n;
export const MCG_EXT_CNT_MASK = field(16, 8);
export const MCG_SER_P = bit(24); // software error recovery (S/AR semantics)
export const MCG_EMC_P = bit(25); // enhanced MC (firmware first)
export const MCG_ELOG_P = bit(26); // extended error logging
export const MCG_LMCE_P = bit(27); // local machine check supported
/** Linux's MAX_NR_BANKS: the kernel ignores banks beyond 32. */
export const MAX_NR_BANKS = 32;

export interface McgCap {
  banks: number;
  ctlP: boolean;
  extP: boolean;
  cmci: boolean;
  tes: boolean;
  extCnt: number;
  ser: boolean;
  emc: boolean;
  elog: boolean;
  lmce: boolean;
}

export function encodeMcgCap(c: Partial<McgCap> & { banks: number }): bigint {
  if (!Number.isInteger(c.banks) || c.banks < 0 || c.banks > 0xff) throw new RangeError(`bank count ${c.banks} does not fit MCG_CAP[7:0]`);
  let v = BigInt(c.banks);
  if (c.ctlP) v |= MCG_CTL_P;
  if (c.extP) v |= MCG_EXT_P;
  if (c.cmci) v |= MCG_CMCI_P;
  if (c.tes) v |= MCG_TES_P;
  v |= (BigInt(c.extCnt ?? 0) << MCG_EXT_CNT_SHIFT) & MCG_EXT_CNT_MASK;
  if (c.ser) v |= MCG_SER_P;
  if (c.emc) v |= MCG_EMC_P;
  if (c.elog) v |= MCG_ELOG_P;
  if (c.lmce) v |= MCG_LMCE_P;
  return v;
}

export function decodeMcgCap(v: bigint): McgCap {
  return {
    banks: Number(v & MCG_BANKCNT_MASK),
    ctlP: (v & MCG_CTL_P) !== 0n,
    extP: (v & MCG_EXT_P) !== 0n,
    cmci: (v & MCG_CMCI_P) !== 0n,
    tes: (v & MCG_TES_P) !== 0n,
    extCnt: Number((v & MCG_EXT_CNT_MASK) >> MCG_EXT_CNT_SHIFT),
    ser: (v & MCG_SER_P) !== 0n,
    emc: (v & MCG_EMC_P) !== 0n,
    elog: (v & MCG_ELOG_P) !== 0n,
    lmce: (v & MCG_LMCE_P) !== 0n,
  };
}

// ---------------------------------------------------------------- IA32_MCG_STATUS (0x17a)
export const MSR_IA32_MCG_STATUS = 0x17a;
export const MCG_STATUS_RIPV = bit(0); // restart IP valid
export const MCG_STATUS_EIPV = bit(1); // error IP valid
export const MCG_STATUS_MCIP = bit(2); // machine check in progress
export const MCG_STATUS_LMCES = bit(3); // local MCE signalled to this CPU only
/** mce-inject's TES_P keyword sets MCG_STATUS bit 11 (it mirrors MCG_CAP.TES_P). */
export const MCG_STATUS_TES_P = bit(11);
export const MCG_STATUS_SEAM_NR = bit(12); // #MC taken in TDX SEAM non-root mode

export interface McgStatus {
  ripv: boolean;
  eipv: boolean;
  mcip: boolean;
  lmces: boolean;
  tesP: boolean;
  seamNr: boolean;
}

export function decodeMcgStatus(v: bigint): McgStatus {
  return {
    ripv: (v & MCG_STATUS_RIPV) !== 0n,
    eipv: (v & MCG_STATUS_EIPV) !== 0n,
    mcip: (v & MCG_STATUS_MCIP) !== 0n,
    lmces: (v & MCG_STATUS_LMCES) !== 0n,
    tesP: (v & MCG_STATUS_TES_P) !== 0n,
    seamNr: (v & MCG_STATUS_SEAM_NR) !== 0n,
  };
}

export function encodeMcgStatus(s: Partial<McgStatus>): bigint {
  let v = 0n;
  if (s.ripv) v |= MCG_STATUS_RIPV;
  if (s.eipv) v |= MCG_STATUS_EIPV;
  if (s.mcip) v |= MCG_STATUS_MCIP;
  if (s.lmces) v |= MCG_STATUS_LMCES;
  if (s.tesP) v |= MCG_STATUS_TES_P;
  if (s.seamNr) v |= MCG_STATUS_SEAM_NR;
  return v;
}

// ---------------------------------------------------------------- IA32_MCi_STATUS
export const MCI_STATUS_VAL = bit(63); // register holds a valid error
export const MCI_STATUS_OVER = bit(62); // an earlier error was lost/overwritten
export const MCI_STATUS_UC = bit(61); // uncorrected
export const MCI_STATUS_EN = bit(60); // reporting enabled in MCi_CTL
export const MCI_STATUS_MISCV = bit(59); // MCi_MISC valid
export const MCI_STATUS_ADDRV = bit(58); // MCi_ADDR valid
export const MCI_STATUS_PCC = bit(57); // processor context corrupt
export const MCI_STATUS_S = bit(56); // signalled (SER)
export const MCI_STATUS_AR = bit(55); // action required (SER)
/** AMD reuses bit 55 as TCC (task context corrupt). */
export const MCI_STATUS_TCC = bit(55);
/** Bits 54:53: threshold-based error status (with MCG_TES_P): 00 none, 01 green, 10 yellow. */
export const MCI_STATUS_TES_SHIFT = 53n;
export const MCI_STATUS_TES_MASK = field(53, 2);
export const MCI_STATUS_TES_GREEN = 1n << 53n;
export const MCI_STATUS_TES_YELLOW = bit(54);
/** Bits 52:38: corrected error count (MCI_STATUS_CEC). */
export const MCI_STATUS_CEC_SHIFT = 38n;
export const MCI_STATUS_CEC_MASK = field(38, 15);
export const MCI_STATUS_CEC_MAX = 0x7fff;
// AMD-only bits, for completeness of the decode (mce_severity_amd).
export const MCI_STATUS_AMD_SYNDV = bit(53);
export const MCI_STATUS_AMD_DEFERRED = bit(44);
export const MCI_STATUS_AMD_POISON = bit(43);
export const MCI_STATUS_AMD_SCRUB = bit(40);
/** Bits 31:16 model-specific error code, bits 15:0 architectural error code. */
export const MCI_STATUS_MSCOD_SHIFT = 16n;
export const MCI_STATUS_MSCOD_MASK = field(16, 16);
export const MCI_STATUS_MCACOD_MASK = 0xffffn;

// MCACOD patterns used by Linux (mask 0xefff ignores bit 12, the "filtering" bit).
export const MCACOD = 0xefffn;
export const MCACOD_SCRUB = 0x00c0n;
export const MCACOD_SCRUBMSK = 0xeff0n;
export const MCACOD_L3WB = 0x017an;
export const MCACOD_DATA = 0x0134n;
export const MCACOD_INSTR = 0x0150n;

export type TesColor = 'none' | 'green' | 'yellow' | 'reserved';

export interface McStatus {
  val: boolean;
  over: boolean;
  uc: boolean;
  en: boolean;
  miscv: boolean;
  addrv: boolean;
  pcc: boolean;
  s: boolean;
  ar: boolean;
  tes: TesColor;
  cec: number;
  mscod: number;
  mcacod: number;
}

const TES_COLORS: readonly TesColor[] = ['none', 'green', 'yellow', 'reserved'];

export function decodeStatus(v: bigint): McStatus {
  return {
    val: (v & MCI_STATUS_VAL) !== 0n,
    over: (v & MCI_STATUS_OVER) !== 0n,
    uc: (v & MCI_STATUS_UC) !== 0n,
    en: (v & MCI_STATUS_EN) !== 0n,
    miscv: (v & MCI_STATUS_MISCV) !== 0n,
    addrv: (v & MCI_STATUS_ADDRV) !== 0n,
    pcc: (v & MCI_STATUS_PCC) !== 0n,
    s: (v & MCI_STATUS_S) !== 0n,
    ar: (v & MCI_STATUS_AR) !== 0n,
    tes: TES_COLORS[Number((v & MCI_STATUS_TES_MASK) >> MCI_STATUS_TES_SHIFT)] ?? 'none',
    cec: statusCec(v),
    mscod: Number((v & MCI_STATUS_MSCOD_MASK) >> MCI_STATUS_MSCOD_SHIFT),
    mcacod: Number(v & MCI_STATUS_MCACOD_MASK),
  };
}

export function encodeStatus(s: Partial<McStatus>): bigint {
  let v = 0n;
  if (s.val) v |= MCI_STATUS_VAL;
  if (s.over) v |= MCI_STATUS_OVER;
  if (s.uc) v |= MCI_STATUS_UC;
  if (s.en) v |= MCI_STATUS_EN;
  if (s.miscv) v |= MCI_STATUS_MISCV;
  if (s.addrv) v |= MCI_STATUS_ADDRV;
  if (s.pcc) v |= MCI_STATUS_PCC;
  if (s.s) v |= MCI_STATUS_S;
  if (s.ar) v |= MCI_STATUS_AR;
  if (s.tes !== undefined) v |= BigInt(TES_COLORS.indexOf(s.tes)) << MCI_STATUS_TES_SHIFT;
  if (s.cec !== undefined) v = withCec(v, s.cec);
  if (s.mscod !== undefined) v |= (BigInt(s.mscod) << MCI_STATUS_MSCOD_SHIFT) & MCI_STATUS_MSCOD_MASK;
  if (s.mcacod !== undefined) v |= BigInt(s.mcacod) & MCI_STATUS_MCACOD_MASK;
  return v;
}

export function statusCec(v: bigint): number {
  return Number((v & MCI_STATUS_CEC_MASK) >> MCI_STATUS_CEC_SHIFT);
}

/** Replace the corrected-error count, saturating at the 15-bit maximum as the hardware does. */
export function withCec(v: bigint, count: number): bigint {
  const c = Math.max(0, Math.min(MCI_STATUS_CEC_MAX, Math.floor(count)));
  return (v & ~MCI_STATUS_CEC_MASK) | (BigInt(c) << MCI_STATUS_CEC_SHIFT);
}

export const statusMcacod = (v: bigint): number => Number(v & MCI_STATUS_MCACOD_MASK);
export const statusMscod = (v: bigint): number => Number((v & MCI_STATUS_MSCOD_MASK) >> MCI_STATUS_MSCOD_SHIFT);

/**
 * Intel's mce_is_memory_error(): memory-controller errors (0x0080-0x00ff, scrub
 * included), cache-hierarchy errors with a memory transaction (0x01xx, e.g.
 * 0x134/0x150/0x17a) and the generic memory-hierarchy code 0x000c-0x000f.
 */
export function isMemoryErrorMcacod(mcacod: number): boolean {
  return (mcacod & 0xef80) === 0x0080 || (mcacod & 0xef00) === 0x0100 || (mcacod & 0xeffc) === 0x000c;
}

// ---------------------------------------------------------------- IA32_MCi_MISC
export const MCI_MISC_ADDR_LSB_MASK = 0x3fn; // bits 5:0: lowest valid address bit
export const MCI_MISC_ADDR_MODE_SHIFT = 6n;
export const MCI_MISC_ADDR_MODE_MASK = 0x7n << 6n; // bits 8:6
export const MCM_ADDR_SEGOFF = 0;
export const MCM_ADDR_LINEAR = 1;
export const MCM_ADDR_PHYS = 2;
export const MCM_ADDR_MEM = 3;
export const MCM_ADDR_GENERIC = 7;

export interface McMisc {
  addrLsb: number;
  addrMode: number;
}

export function decodeMisc(v: bigint): McMisc {
  return {
    addrLsb: Number(v & MCI_MISC_ADDR_LSB_MASK),
    addrMode: Number((v & MCI_MISC_ADDR_MODE_MASK) >> MCI_MISC_ADDR_MODE_SHIFT),
  };
}

/** Encode the architectural part of MCi_MISC; e.g. {addrLsb:12, addrMode:PHYS} = 0x8c. */
export function encodeMisc(m: McMisc, rest = 0n): bigint {
  return (rest & ~(MCI_MISC_ADDR_LSB_MASK | MCI_MISC_ADDR_MODE_MASK)) |
    (BigInt(m.addrLsb) & MCI_MISC_ADDR_LSB_MASK) |
    ((BigInt(m.addrMode) << MCI_MISC_ADDR_MODE_SHIFT) & MCI_MISC_ADDR_MODE_MASK);
}

// ---------------------------------------------------------------- IA32_MCi_CTL2 (CMCI)
/** Bits 14:0: corrected-error threshold; bit 30: CMCI enable (arch/x86 mce/intel.c). */
export const MCI_CTL2_CMCI_THRESHOLD_MASK = 0x7fffn;
export const MCI_CTL2_CMCI_EN = bit(30);

// ---------------------------------------------------------------- MSR addresses of bank i
export const msrMcCtl = (bank: number): number => 0x400 + 4 * bank;
export const msrMcStatus = (bank: number): number => 0x401 + 4 * bank;
export const msrMcAddr = (bank: number): number => 0x402 + 4 * bank;
export const msrMcMisc = (bank: number): number => 0x403 + 4 * bank;
export const msrMcCtl2 = (bank: number): number => 0x280 + bank;

/** Classify an MCi_STATUS the way the SDM's overwrite tables do. */
export type ErrorClass = 'none' | 'disabled' | 'ce' | 'ucna' | 'srao' | 'srar' | 'uc';

/**
 * SDM Table 15-7 vocabulary: CE (UC=0), UCR (UC=1, PCC=0; split by S/AR into
 * UCNA, SRAO, SRAR when SER), UC (PCC=1, or any UC=1 without SER).
 */
export function classifyStatus(v: bigint, ser: boolean): ErrorClass {
  if ((v & MCI_STATUS_VAL) === 0n) return 'none';
  if ((v & MCI_STATUS_EN) === 0n) return 'disabled';
  if ((v & MCI_STATUS_UC) === 0n) return 'ce';
  if ((v & MCI_STATUS_PCC) !== 0n || !ser) return 'uc';
  if ((v & MCI_STATUS_S) === 0n) return 'ucna';
  return (v & MCI_STATUS_AR) !== 0n ? 'srar' : 'srao';
}
