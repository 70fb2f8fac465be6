/**
 * Model of arch/x86/kernel/cpu/mce/threshold.c's CMCI storm tracking (v6.8+, Tony Luck's
 * "x86/mce: Add per-bank CMCI storm mitigation" 7eae17c4add5; profile cmciStormPerBank).
 *
 * machine_check_poll() calls mce_track_storm() for every bank it reads (before the VAL check,
 * unless mce=no_cmci). Each bank keeps a 64-bit history: outside a storm the bank is read only on
 * a CMCI, so the history shifts by 1 + the whole seconds since the bank was last read
 * ((delta + HZ) / HZ, ≥ 64 clears it); in a storm every poll shifts it by one. Bit 0 is set when
 * the read found a valid corrected error. STORM_BEGIN_THRESHOLD (5) set bits start a storm:
 * `CPU%d BANK%d CMCI storm detected`, mce_handle_storm(bank, true) (CMCI threshold 32749),
 * cmci_storm_begin() (bank into mce_poll_banks; the first stormy bank of the CPU kicks the timer
 * to one poll per second). A storm ends when the low STORM_END_POLL_THRESHOLD + 1 (30) bits are
 * clear: `CPU%d BANK%d CMCI storm subsided`, threshold back, cmci_storm_end() (last stormy bank:
 * mce_timer_kick(false), mce_next_interval = check_interval). Both lines are printk_deferred(
 * KERN_NOTICE ...) — no pr_fmt, so no "mce: " prefix.
 */
import type { Kernel } from '../../../../../kernel.js';
import { CMCI_STORM_THRESHOLD, HZ } from './intel.js';

/** Bits in struct storm_bank.history. */
const NUM_HISTORY_BITS = 64;
const MASK64 = (1n << 64n) - 1n;
/** How many errors within the history buffer mark the start of a storm. */
export const STORM_BEGIN_THRESHOLD = 5;
/** How many polls without an error (the mask is bits 0..29) before the storm is over. */
export const STORM_END_POLL_THRESHOLD = 29;

const MCI_STATUS_VAL = 1n << 63n;
const MCI_STATUS_UC = 1n << 61n;

/** What threshold.c needs from core.c / intel.c. */
export interface StormHost {
  readonly k: Kernel;
  jiffies(): number;
  /** mce_handle_storm() → mce_intel_handle_storm(). */
  handleStorm(cpu: number, bank: number, on: boolean): void;
  /** mce_timer_kick(bool storm). */
  timerKickStorm(cpu: number, storm: boolean): void;
}

/** struct storm_bank. */
interface StormBank {
  history: bigint;
  /** jiffies of the last read; undefined = never (jiffies start far back: history cleared). */
  timestamp: number | undefined;
  inStormMode: boolean;
}

/** struct mca_storm_desc (per CPU). */
interface StormDesc {
  banks: Map<number, StormBank>;
  stormyBankCount: number;
  pollMode: boolean;
  /** The storm banks this CPU added to mce_poll_banks. */
  pollBanks: Set<number>;
}

const popcount = (v: bigint): number => {
  let n = 0;
  for (; v; v &= v - 1n) n++;
  return n;
};

export class StormTracker {
  private readonly desc = new Map<number, StormDesc>();

  constructor(private readonly host: StormHost) {}

  private d(cpu: number): StormDesc {
    let s = this.desc.get(cpu);
    if (!s) {
      s = { banks: new Map(), stormyBankCount: 0, pollMode: false, pollBanks: new Set() };
      this.desc.set(cpu, s);
    }
    return s;
  }

  private bank(cpu: number, bank: number): StormBank {
    const s = this.d(cpu);
    let b = s.banks.get(bank);
    if (!b) {
      b = { history: 0n, timestamp: undefined, inStormMode: false };
      s.banks.set(bank, b);
    }
    return b;
  }

  /** mce_get_storm_mode(). */
  pollMode(cpu: number): boolean {
    return this.d(cpu).pollMode;
  }

  /** Banks in storm mode on a CPU (they are in mce_poll_banks). */
  stormBanks(cpu: number): number[] {
    return [...this.d(cpu).pollBanks].sort((a, b) => a - b);
  }

  /** The history bitmap of a bank (tests). */
  history(cpu: number, bank: number): bigint {
    return this.bank(cpu, bank).history;
  }

  /** mce_track_storm(). */
  track(cpu: number, bankNo: number, status: bigint): void {
    const b = this.bank(cpu, bankNo);
    const now = this.host.jiffies();
    let shift = 1;
    if (!b.inStormMode) shift = b.timestamp === undefined ? NUM_HISTORY_BITS : Math.floor((now - b.timestamp + HZ) / HZ);
    let history = 0n;
    if (shift < NUM_HISTORY_BITS) history = (b.history << BigInt(shift)) & MASK64;
    b.timestamp = now;
    // History keeps track of corrected errors. VAL=1 && UC=0
    if (status & MCI_STATUS_VAL && !(status & MCI_STATUS_UC)) history |= 1n;
    b.history = history;
    const k = this.host.k;
    if (b.inStormMode) {
      if (history & ((1n << BigInt(STORM_END_POLL_THRESHOLD + 1)) - 1n)) return;
      k.trail('mce_track_storm', `CPU ${cpu} bank ${bankNo}: ${STORM_END_POLL_THRESHOLD + 1} polls without an error: storm over`);
      k.log.print('info', `CPU${cpu} BANK${bankNo} CMCI storm subsided`);
      this.host.handleStorm(cpu, bankNo, false);
      this.stormEnd(cpu, bankNo);
    } else {
      if (popcount(history) < STORM_BEGIN_THRESHOLD) return;
      k.trail('mce_track_storm', `CPU ${cpu} bank ${bankNo}: ${popcount(history)} errors in the history (0x${history.toString(16)}): storm, threshold ${CMCI_STORM_THRESHOLD}, polled every second`);
      k.log.print('info', `CPU${cpu} BANK${bankNo} CMCI storm detected`);
      this.host.handleStorm(cpu, bankNo, true);
      this.stormBegin(cpu, bankNo);
    }
  }

  /** cmci_storm_begin(). */
  private stormBegin(cpu: number, bank: number): void {
    const s = this.d(cpu);
    s.pollBanks.add(bank);
    this.bank(cpu, bank).inStormMode = true;
    if (++s.stormyBankCount === 1) this.host.timerKickStorm(cpu, true);
  }

  /** cmci_storm_end(). */
  private stormEnd(cpu: number, bank: number): void {
    const s = this.d(cpu);
    s.pollBanks.delete(bank);
    const b = this.bank(cpu, bank);
    b.history = 0n;
    b.inStormMode = false;
    if (!--s.stormyBankCount) this.host.timerKickStorm(cpu, false);
  }

  /** mce_set_storm_mode(). */
  setPollMode(cpu: number, storm: boolean): void {
    this.d(cpu).pollMode = storm;
  }
}
