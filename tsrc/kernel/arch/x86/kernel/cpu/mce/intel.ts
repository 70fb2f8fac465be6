/**
 * Model of arch/x86/kernel/cpu/mce/intel.c's CMCI storm handling.
 *
 * ≤6.7 (profile cmciStormPerBank = false): cmci_storm_detect() counts CMCIs per CPU; more than
 * CMCI_STORM_THRESHOLD (15) within CMCI_STORM_INTERVAL (HZ) of the first one switch the CPU's
 * owned banks to polling (CMCI_EN cleared, cmci_toggle_interrupt_mode(false)), kick the poll
 * timer to one second and print `CMCI storm detected: switching to poll mode` when it is the first
 * CPU in a storm (cmci_storm_on_cpus). The CMCI that detects the storm does not poll: its error
 * stays in the bank for the timer. Every timer tick mce_intel_cmci_poll() polls the owned banks;
 * a poll that logs resets cmci_backoff_cnt to INITIAL_CHECK_INTERVAL (300), an empty one
 * decrements it. cmci_intel_adjust_timer() keeps the 1 s interval while the count is > 0; at 0
 * the CPU goes SUBSIDED, the last CPU to do so prints `CMCI storm subsided: switching to
 * interrupt mode`, and once no CPU is in a storm CMCI is switched back on (cmci_recheck() polls
 * the banks once) and the timer runs at CMCI_POLL_INTERVAL (30 s). pr_notice with internal.h's
 * pr_fmt "mce: ".
 *
 * ≥6.8: mce_intel_handle_storm() only moves the bank's CMCI threshold between its boot value
 * (cmci_threshold[bank], CMCI_THRESHOLD = 1) and CMCI_STORM_THRESHOLD (32749); the tracking is in
 * threshold.ts.
 */
import type { Kernel } from '../../../../../kernel.js';
import type { Machine } from '../../../../../../hw/machine.js';

/** INITIAL_CHECK_INTERVAL (internal.h): 5 * 60 (seconds; also the storm backoff count). */
export const INITIAL_CHECK_INTERVAL = 5 * 60;
/** CONFIG_HZ of the modelled (Debian) kernels. */
export const HZ = 250;
/** Linux non-storm CMCI threshold (cmci_discover()). */
export const CMCI_THRESHOLD = 1;
/** ≤6.7: CMCI_POLL_INTERVAL (30 * HZ). */
export const CMCI_POLL_INTERVAL = 30 * HZ;
/** ≤6.7: CMCI_STORM_INTERVAL (HZ). */
export const CMCI_STORM_INTERVAL = HZ;
/** ≤6.7: CMCI_STORM_THRESHOLD (15 CMCIs). */
export const CMCI_STORM_THRESHOLD_OLD = 15;
/** ≥6.8: CMCI_STORM_THRESHOLD, the MCi_CTL2 threshold during a storm (32749). */
export const CMCI_STORM_THRESHOLD = 32749;

const MSR_IA32_MCx_CTL2 = (bank: number): number => 0x280 + bank;
const MCI_CTL2_CMCI_EN = 1n << 30n;
const MCI_CTL2_CMCI_THRESHOLD_MASK = 0x7fffn;

/** What intel.c needs from core.c. */
export interface CmciHost {
  readonly k: Kernel;
  readonly machine: Machine;
  /** machine_check_poll(flags, banks) on `cpu`; true if it logged something. */
  poll(cpu: number, flags: number, banks: readonly number[]): boolean;
  /** mce_timer_kick(): ≤6.7 takes an interval in jiffies. */
  timerKickInterval(cpu: number, interval: number): void;
  /** this_cpu_ptr(&mce_banks_owned). */
  ownedBanks(cpu: number): number[];
  jiffies(): number;
}

type StormState = 'CMCI_STORM_NONE' | 'CMCI_STORM_ACTIVE' | 'CMCI_STORM_SUBSIDED';

interface PerCpu {
  state: StormState;
  /** cmci_storm_cnt / cmci_time_stamp (jiffies). */
  cnt: number;
  ts: number | undefined;
  /** cmci_backoff_cnt. */
  backoff: number;
}

export class IntelCmci {
  private readonly cpus = new Map<number, PerCpu>();
  /** cmci_storm_on_cpus. */
  stormOnCpus = 0;

  constructor(private readonly host: CmciHost) {}

  private pc(cpu: number): PerCpu {
    let p = this.cpus.get(cpu);
    if (!p) {
      p = { state: 'CMCI_STORM_NONE', cnt: 0, ts: undefined, backoff: 0 };
      this.cpus.set(cpu, p);
    }
    return p;
  }

  /** Storm state of a CPU (for reports and tests). */
  state(cpu: number): StormState {
    return this.pc(cpu).state;
  }

  /** ≤6.7 cmci_storm_detect(): true when the CMCI is not to be polled (storm on this CPU). */
  stormDetect(cpu: number): boolean {
    const p = this.pc(cpu);
    const now = this.host.jiffies();
    if (p.state !== 'CMCI_STORM_NONE') return true;
    if (p.ts !== undefined && now <= p.ts + CMCI_STORM_INTERVAL) {
      p.cnt++;
    } else {
      p.cnt = 1;
      p.ts = now;
    }
    if (p.cnt <= CMCI_STORM_THRESHOLD_OLD) return false;
    this.toggleInterruptMode(cpu, false);
    p.state = 'CMCI_STORM_ACTIVE';
    const r = ++this.stormOnCpus;
    this.host.timerKickInterval(cpu, CMCI_STORM_INTERVAL);
    p.backoff = INITIAL_CHECK_INTERVAL;
    this.host.k.trail('cmci_storm_detect', `CPU ${cpu}: ${p.cnt} CMCIs within ${CMCI_STORM_INTERVAL} jiffies: banks ${this.host.ownedBanks(cpu).join(',')} to poll mode (cmci_storm_on_cpus ${r})`);
    if (r === 1) this.host.k.log.print('info', 'mce: CMCI storm detected: switching to poll mode');
    return true;
  }

  /** ≤6.7 mce_intel_cmci_poll(): the timer's poll of the owned banks during a storm. */
  cmciPoll(cpu: number): boolean {
    const p = this.pc(cpu);
    if (p.state === 'CMCI_STORM_NONE') return false;
    if (this.host.poll(cpu, 0, this.host.ownedBanks(cpu))) p.backoff = INITIAL_CHECK_INTERVAL;
    else p.backoff--;
    return true;
  }

  /** ≤6.7 cmci_intel_adjust_timer() (mce_adjust_timer): the next poll interval in jiffies. */
  adjustTimer(cpu: number, interval: number): number {
    const p = this.pc(cpu);
    if (p.backoff > 0 && p.state === 'CMCI_STORM_ACTIVE') return CMCI_STORM_INTERVAL;
    if (p.state === 'CMCI_STORM_NONE') return interval; // shiny weather: the poll does what it thinks
    if (p.state === 'CMCI_STORM_ACTIVE') {
      // The poll timer has silenced itself: no events for INITIAL_CHECK_INTERVAL polls.
      p.state = 'CMCI_STORM_SUBSIDED';
      this.host.k.trail('cmci_intel_adjust_timer', `CPU ${cpu}: ${INITIAL_CHECK_INTERVAL} polls without an error: storm subsided (cmci_storm_on_cpus ${this.stormOnCpus - 1})`);
      if (--this.stormOnCpus === 0) this.host.k.log.print('info', 'mce: CMCI storm subsided: switching to interrupt mode');
    }
    // CMCI_STORM_SUBSIDED: back to interrupt mode once every CPU has subsided.
    if (this.stormOnCpus === 0) {
      p.state = 'CMCI_STORM_NONE';
      this.toggleInterruptMode(cpu, true);
      // cmci_recheck()
      this.host.poll(cpu, 0, this.host.ownedBanks(cpu));
    }
    return CMCI_POLL_INTERVAL;
  }

  /** ≤6.7 cmci_toggle_interrupt_mode(): CMCI_EN of every owned bank. */
  private toggleInterruptMode(cpu: number, on: boolean): void {
    const mca = this.host.machine.mca;
    for (const bank of this.host.ownedBanks(cpu)) {
      let val = mca.rdmsr(cpu, MSR_IA32_MCx_CTL2(bank));
      val = on ? val | MCI_CTL2_CMCI_EN : val & ~MCI_CTL2_CMCI_EN;
      mca.wrmsr(cpu, MSR_IA32_MCx_CTL2(bank), val);
    }
  }

  /** ≥6.8 mce_intel_handle_storm() → cmci_set_threshold(): CMCI_EN is kept. */
  handleStorm(cpu: number, bank: number, on: boolean): void {
    const mca = this.host.machine.mca;
    const val = mca.rdmsr(cpu, MSR_IA32_MCx_CTL2(bank)) & ~MCI_CTL2_CMCI_THRESHOLD_MASK;
    mca.wrmsr(cpu, MSR_IA32_MCx_CTL2(bank), val | BigInt(on ? CMCI_STORM_THRESHOLD : CMCI_THRESHOLD));
  }
}
