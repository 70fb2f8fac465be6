/**
 * Model of arch/x86/kernel/cpu/mce/core.c (current kernels, kernel-model.md
 * §19.5–19.7): do_machine_check() with the broadcast rendezvous
 * (mce_start/mce_end/mce_reign and their timeouts), mce_panic() and the
 * fake_panic debugfs knob, the task_work callbacks kill_me_now /
 * kill_me_maybe / kill_me_never, machine_check_poll() for CMCI and the poll
 * timer, mce_log() into the gen pool, and the x86_mce_decoder_chain run from
 * process context (RAS CEC, mce_early_notifier, uc_decode_notifier, the
 * legacy /dev/mcelog reader, mce_default_notifier).
 *
 * The handler reads the simulated banks through Machine.mca exactly as the
 * kernel reads MSRs; the Machine only says which CPUs entered (and which did
 * not answer), it grades and decides nothing.
 */
import type { Kernel } from '../../../../../kernel.js';
import type { Task } from '../../../../../sched.js';
import { SIGBUS, SI_KERNEL } from '../../../../../sched.js';
import { MF_ACTION_REQUIRED, MF_MUST_KILL, memoryFailure } from '../../../../../mm/memory-failure.js';
import { PG } from '../../../../../mm/page.js';
import { EHWPOISON, EOPNOTSUPP } from '../../../../../errno.js';
import type { CpuCheck, Machine, MachineCheckEvent } from '../../../../../../hw/machine.js';
import { Cec } from '../../../../../drivers/ras/cec.js';
import {
  MCE_AO_SEVERITY, MCE_AR_SEVERITY, MCE_DEFERRED_SEVERITY, MCE_KEEP_SEVERITY, MCE_NO_SEVERITY, MCE_PANIC_SEVERITY, MCE_UCNA_SEVERITY,
  SEVERITY_TABLES, errorContext, mceSeverity,
} from './severity.js';
import type { ErrorContextResult, FixupType, SeverityLevel, SeverityTableName } from './severity.js';
import { MceGenPool, mceCmp } from './genpool.js';
import {
  KERNEL_CS, MCE_HANDLED_CEC, MCE_HANDLED_MCELOG, MCE_HANDLED_UC, MCE_IN_KERNEL_COPYIN, MCE_IN_KERNEL_RECOV, X86_VENDOR_INTEL, hx,
} from './internal.js';
import type { McaCfg, Mce } from './internal.js';
import { HZ, INITIAL_CHECK_INTERVAL, IntelCmci } from './intel.js';
import { StormTracker } from './threshold.js';

const bit = (n: number): bigint => 1n << BigInt(n);
const MCI_STATUS_VAL = bit(63), MCI_STATUS_UC = bit(61), MCI_STATUS_EN = bit(60), MCI_STATUS_MISCV = bit(59), MCI_STATUS_ADDRV = bit(58);
const MCI_STATUS_PCC = bit(57), MCI_STATUS_S = bit(56);
const MCG_STATUS_RIPV = bit(0), MCG_STATUS_EIPV = bit(1), MCG_STATUS_MCIP = bit(2), MCG_STATUS_LMCES = bit(3), MCG_STATUS_SEAM_NR = bit(12);
/** MCI_ADDR_PHYSADDR: bits 51:0 of MCi_ADDR. */
const MCI_ADDR_PHYSADDR = (1n << 52n) - 1n;
const PAGE_SHIFT = 12n;
/** machine_check_poll() flags (enum mcp_flags). */
export const MCP_TIMESTAMP = 1 << 0;
export const MCP_UC = 1 << 1;
export const MCP_DONTLOG = 1 << 2;
/** Model wall clock at k.now == 0 (what TIME prints). */
const EPOCH = 1_700_000_000n;
const TSC_HZ = 2_500_000_000;

/** Names of the severity levels (enum severity_level) for reports. */
export const SEVERITY_LEVEL_NAMES: Record<number, string> = {
  0: 'MCE_NO_SEVERITY', 1: 'MCE_UCNA_SEVERITY', 2: 'MCE_KEEP_SEVERITY', 3: 'MCE_SOME_SEVERITY',
  4: 'MCE_AO_SEVERITY', 5: 'MCE_UC_SEVERITY', 6: 'MCE_AR_SEVERITY', 7: 'MCE_PANIC_SEVERITY',
};

/** Stable coverage name of a severities[] row: "severity NN: <msg>" (pre-5.18 table prefixed). */
export function severityRowName(table: SeverityTableName, index: number): string {
  const row = SEVERITY_TABLES[table][index];
  const n = String(index + 1).padStart(2, '0');
  return `${table === 'current' ? '' : `${table} `}severity ${n}: ${row?.msg ?? '?'}`;
}

/** mce_usable_address() (Intel/Zhaoxin). */
export function mceUsableAddress(m: Pick<Mce, 'status' | 'misc'>): boolean {
  if (!(m.status & MCI_STATUS_ADDRV)) return false;
  if (!(m.status & MCI_STATUS_MISCV)) return false;
  if ((m.misc & 0x3fn) > PAGE_SHIFT) return false;
  if (((m.misc >> 6n) & 7n) !== 2n) return false;
  return true;
}

/** mce_is_memory_error() (Intel). */
export function mceIsMemoryError(m: Pick<Mce, 'status'>): boolean {
  const s = m.status;
  return (s & 0xef80n) === 0x80n || (s & 0xef00n) === 0x100n || (s & 0xeffcn) === 0xcn;
}

/** mce_is_correctable(). */
export function mceIsCorrectable(m: Pick<Mce, 'status'>): boolean {
  return !(m.status & MCI_STATUS_UC);
}

/** whole_page(). */
function wholePage(cfg: McaCfg, m: Mce): boolean {
  if (!cfg.ser || !(m.status & MCI_STATUS_MISCV)) return true;
  return (m.misc & 0x3fn) >= PAGE_SHIFT;
}

/** %*pbl: a CPU list with ranges, e.g. "1-3,5". */
export function cpuList(cpus: readonly number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; i++) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : String(s[i]));
    i = j;
  }
  return out.join(',');
}

/** Per-task MCE state (task_struct mce_* fields) and the queued callback. */
interface TaskWork {
  task: Task;
  count: number;
  addr: bigint;
  kflags: number;
  ripv: boolean;
  wholePage: boolean;
  func: 'kill_me_now' | 'kill_me_maybe' | 'kill_me_never';
}

/** One CPU inside do_machine_check(). */
interface McCpu {
  chk: CpuCheck;
  cpu: number;
  /** The working record (struct mce m). */
  m: Mce;
  /** this_cpu_ptr(&mces_seen): the worst record this CPU logged. */
  final: Mce;
  noWayOut: boolean;
  msg: string | undefined;
  killCurrentTask: boolean;
  lmce: boolean;
  order: number;
  worst: number;
  valid: number[];
  taint: boolean;
}

export interface McaOptions {
  cfg: McaCfg;
  /** debugfs mce/fake_panic. */
  fakePanic: boolean;
  /** drivers/ras/cec.c enabled, with its action threshold. */
  cec?: { threshold: number } | undefined;
}

/** What the handler graded, for step reports. */
export interface Graded {
  sev: SeverityLevel;
  msg: string;
  rowIndex: number;
}

/** A consumer of records seen by the notifier chain (tracepoint mce_record / /dev/mcelog reader). */
export type RecordConsumer = (m: Mce) => void;

/** The machine-check subsystem of one kernel (mca_cfg + core.c's static state). */
export class MachineCheck {
  readonly pool = new MceGenPool();
  readonly cfg: McaCfg;
  fakePanic: boolean;
  /** mce_panicked / mce_fake_panicked. */
  private panicked = 0;
  private fakePanicked = 0;
  /** Messages mce_panic() was called with that reached the (fake) panic. */
  readonly panics: string[] = [];
  private workQueued = false;
  private tainted = false;
  readonly taskWork = new Map<Task, TaskWork>();
  /** Every record handed to mce_log(), in order (what /dev/mcelog or the trace would see). */
  readonly logged: Mce[] = [];
  /** Everything graded, in order. */
  readonly graded: Graded[] = [];
  readonly cec: Cec | undefined;
  /** User-space readers of the records (mcelog/rasdaemon). */
  readonly consumers: RecordConsumer[] = [];
  /** Pfns soft-offlining was asked for (CEC, page threshold). */
  readonly softOfflineRequested = new Set<number>();
  /** CPUs whose kernel-recoverable context is a copy from user space (MCE_IN_KERNEL_COPYIN). */
  readonly copyinCpus = new Set<number>();
  /** The task current on each CPU (for task_work). */
  readonly current = new Map<number, Task>();
  /** Fallback current for user-mode frames without a named task (the injecting process). */
  injector: (() => Task) | undefined;
  private readonly table: SeverityTableName;
  /** intel.c: CMCI storm handling (≤6.7) and the CMCI threshold switch (≥6.8). */
  readonly intel: IntelCmci;
  /** threshold.c: per-bank storm tracking (≥6.8). */
  readonly storm: StormTracker;
  /** check_interval (seconds; sysfs machinecheck/check_interval). */
  checkInterval = INITIAL_CHECK_INTERVAL;
  /** Per-CPU mce_timer: expiry and mce_next_interval, in jiffies. */
  readonly timers = new Map<number, { expires: number | undefined; nextInterval: number }>();

  constructor(readonly k: Kernel, readonly machine: Machine, opts: McaOptions) {
    this.cfg = opts.cfg;
    this.fakePanic = opts.fakePanic;
    // pre-5.18: tolerant-graded; 5.18-6.1: no "Uncorrected in kernel" row (v6.2), no SEAM rows
    // (v6.10). The current table has both; no profile sits in 6.2-6.9.
    this.table = opts.cfg.tolerant !== undefined ? 'pre-5.18' : !k.profile.mceUncorrectedInKernelRow ? 'pre-6.2' : 'current';
    this.cec = opts.cec ? new Cec(k, opts.cec.threshold) : undefined;
    const host = {
      k, machine,
      jiffies: () => this.jiffies(),
      poll: (cpu: number, flags: number, banks: readonly number[]) => this.machineCheckPoll(cpu, flags, banks),
      ownedBanks: (cpu: number) => this.ownedBanks(cpu),
      timerKickInterval: (cpu: number, iv: number) => this.timerKickInterval(cpu, iv),
      timerKickStorm: (cpu: number, storm: boolean) => this.timerKickStorm(cpu, storm),
      handleStorm: (cpu: number, bank: number, on: boolean) => this.intel.handleStorm(cpu, bank, on),
    };
    this.intel = new IntelCmci(host);
    this.storm = new StormTracker(host);
    // mce_start_timer() on every online CPU at boot: check_interval.
    for (const cpu of machine.cpus.onlineIds()) {
      const iv = this.checkInterval * HZ;
      this.timers.set(cpu, { expires: undefined, nextInterval: iv });
      this.startTimer(cpu, iv);
    }
  }

  private pr(level: 'emerg' | 'err' | 'warn' | 'info', text: string): void {
    this.k.log.print(level, `mce: ${text}`);
  }

  // ---- records -------------------------------------------------------------------------------

  /** mce_prep_record() + mce_gather_info(): a fresh record for `cpu`. */
  private gather(cpu: number, chk: CpuCheck | undefined, timestamp: boolean): Mce {
    const st = this.machine.cpus.get(cpu);
    const mcg = this.machine.mca.mcgStatus(cpu);
    const m: Mce = {
      status: 0n, misc: 0n, addr: 0n, mcgstatus: mcg, ip: 0n, cs: 0,
      tsc: timestamp ? BigInt(Math.floor(this.k.now * TSC_HZ)) + 0x100000n : 0n,
      time: EPOCH + BigInt(Math.floor(this.k.now)),
      cpuvendor: X86_VENDOR_INTEL, cpuid: this.machine.cpuModel.cpuid, bank: 0, cpu,
      socketid: st.socket, apicid: st.apicId, mcgcap: this.machine.mca.mcgCap, microcode: this.machine.cpuModel.microcode,
      severity: MCE_NO_SEVERITY, kflags: 0,
    };
    if (chk && mcg & (MCG_STATUS_RIPV | MCG_STATUS_EIPV)) {
      m.ip = chk.ip;
      m.cs = chk.cs;
    }
    return m;
  }

  /** error_context() for a record read on `cpu`; sets MCE_IN_KERNEL_* in m.kflags. */
  private errorContext(m: Mce, chk: CpuCheck | undefined): ErrorContextResult {
    let fixup: FixupType = 'none';
    const copyin = chk ? this.copyinCpus.has(chk.cpu) : false;
    if (chk?.context === 'kernel-recov') fixup = copyin ? 'uaccess' : 'mce-safe';
    const r = errorContext(m.cs, m.mcgstatus, fixup, copyin);
    if (r.inKernelRecov) m.kflags |= MCE_IN_KERNEL_RECOV;
    if (r.inKernelCopyin) m.kflags |= MCE_IN_KERNEL_COPYIN;
    return r;
  }

  /** mce_severity(): grades a record and records the row hit. */
  severity(m: Mce, chk: CpuCheck | undefined, isExcp: boolean): { sev: SeverityLevel; msg: string } {
    const ctx = this.errorContext(m, chk);
    const model = this.machine.cpuModel;
    const r = mceSeverity(
      { status: m.status, mcgStatus: m.mcgstatus, bank: m.bank },
      {
        ser: this.cfg.ser, isExcp, context: ctx.context, table: this.table, cpu: { model: model.model, stepping: model.stepping },
        coverage: null, ...(this.cfg.tolerant !== undefined ? { tolerant: this.cfg.tolerant } : {}),
      },
    );
    this.k.coverage.severities.add(severityRowName(this.table, r.rowIndex));
    this.graded.push({ sev: r.sev, msg: r.msg, rowIndex: r.rowIndex });
    this.k.trail('mce_severity', `CPU ${m.cpu} bank ${m.bank} status ${hx(m.status)}: ${SEVERITY_LEVEL_NAMES[r.sev]} "${r.msg}"`, { context: ctx.context, excp: isExcp });
    return { sev: r.sev, msg: r.msg };
  }

  /** mce_read_aux(): MISC if MISCV, ADDR if ADDRV (masked to the MISC LSB with SER). */
  private readAux(m: Mce, cpu: number, bank: number): void {
    const b = this.machine.mca.bank(cpu, bank);
    if (m.status & MCI_STATUS_MISCV) m.misc = b.misc;
    if (m.status & MCI_STATUS_ADDRV) {
      m.addr = b.addr;
      if (this.cfg.ser && m.status & MCI_STATUS_MISCV) {
        const shift = m.misc & 0x3fn;
        m.addr = (m.addr >> shift) << shift;
      }
    }
  }

  /** mce_log(): into the gen pool; the chain runs later from a work item. */
  mceLog(m: Mce): void {
    const rec = { ...m };
    this.logged.push(rec);
    if (this.pool.add(rec)) {
      this.k.log.printRatelimited('mce-pool-full', this.k.now, 5, 10, 'warn', 'mce: MCE records pool full!');
      return;
    }
    this.scheduleWork();
  }

  /** irq_work → mce_schedule_work(): mce_gen_pool_process() as a work item. */
  private scheduleWork(): void {
    if (this.workQueued) return;
    this.workQueued = true;
    this.k.scheduleWork(() => {
      this.workQueued = false;
      this.genPoolProcess();
    });
  }

  /** mce_gen_pool_process(): the decoder chain on every pending record, oldest first. */
  genPoolProcess(): void {
    for (const m of this.pool.takeAll()) this.decoderChain(m);
  }

  /** x86_mce_decoder_chain, in priority order. */
  private decoderChain(m: Mce): void {
    // MCE_PRIO_CEC: cec_notifier()
    if (this.cec && mceIsMemoryError(m) && mceIsCorrectable(m) && mceUsableAddress(m)) {
      const pfn = Number((m.addr & MCI_ADDR_PHYSADDR) >> PAGE_SHIFT);
      const r = this.cec.addElem(pfn);
      if (r > 0) this.softOfflineRequested.add(pfn);
      if (r === 0) m.kflags |= MCE_HANDLED_CEC;
    }
    // MCE_PRIO_EARLY: mce_early_notifier(): trace_mce_record, mce_notify_irq()
    if (this.k.profile.major < 6 || (this.k.profile.major === 6 && this.k.profile.minor < 13)) {
      this.k.log.printRatelimited('mce_notify_irq', this.k.now, 60, 2, 'info', 'mce: [Hardware Error]: Machine check events logged');
    }
    // MCE_PRIO_UC: uc_decode_notifier()
    if (mceUsableAddress(m) && (m.severity === MCE_AO_SEVERITY || m.severity === MCE_DEFERRED_SEVERITY)) {
      const pfn = Number((m.addr & MCI_ADDR_PHYSADDR) >> PAGE_SHIFT);
      const ret = this.withCurrent(null, () => memoryFailure(this.k, pfn, 0));
      if (ret === 0) {
        this.setMceNospec(pfn);
        m.kflags |= MCE_HANDLED_UC;
      }
    }
    // MCE_PRIO_MCELOG: the legacy /dev/mcelog reader (and tracepoint consumers such as rasdaemon).
    if (this.consumers.length && !(m.kflags & MCE_HANDLED_CEC)) {
      for (const c of this.consumers) c(m);
      m.kflags |= MCE_HANDLED_MCELOG;
    }
    // MCE_PRIO_LOWEST: mce_default_notifier()
    if (this.cfg.printAll || !m.kflags) this.printMceBody(m);
  }

  /** set_mce_nospec(): unmap the page from the direct map (nothing to model). */
  private setMceNospec(pfn: number): void {
    this.k.trail('set_mce_nospec', `pfn 0x${pfn.toString(16)} removed from the direct map`);
  }

  private withCurrent<T>(task: Task | null, fn: () => T): T | undefined {
    const prev = this.k.current;
    this.k.current = task;
    try {
      return this.k.guard(fn);
    } finally {
      this.k.current = prev;
    }
  }

  // ---- printing and panic ----------------------------------------------------------------------

  /** __print_mce(). */
  private printMceBody(m: Mce): void {
    const HW = '[Hardware Error]: ';
    this.pr('emerg', `${HW}CPU ${m.cpu}: Machine Check${m.mcgstatus & MCG_STATUS_MCIP ? ' Exception' : ''}: ${hx(m.mcgstatus)} Bank ${m.bank}: ${hx(m.status).padStart(16, '0')}`);
    if (m.ip) {
      const sym = m.cs === KERNEL_CS ? `{0x${hx(m.ip)}}` : '';
      this.pr('emerg', `${HW}RIP${!(m.mcgstatus & MCG_STATUS_EIPV) ? ' !INEXACT!' : ''} ${hx(m.cs).padStart(2, '0')}:<${hx(m.ip).padStart(16, '0')}> ${sym}`);
    }
    let tsc = `${HW}TSC ${hx(m.tsc)} `;
    if (m.addr) tsc += `ADDR ${hx(m.addr)} `;
    if (m.misc) tsc += `MISC ${hx(m.misc)} `;
    this.pr('emerg', tsc);
    this.pr('emerg', `${HW}PROCESSOR ${m.cpuvendor}:${hx(m.cpuid)} TIME ${m.time} SOCKET ${m.socketid} APIC ${hx(m.apicid)} microcode ${hx(m.microcode)}`);
  }

  /** print_mce(). */
  private printMce(m: Mce): void {
    this.printMceBody(m);
    this.k.log.printRatelimited('print_mce', this.k.now, 5, 10, 'emerg', "mce: [Hardware Error]: Run the above through 'mcelog --ascii'");
  }

  /** mce_panic(): dump pending records, the final one last, then panic (or only log with fake_panic). */
  mcePanic(msg: string, final: Mce | undefined, exp: string | undefined): void {
    if (!this.fakePanic) {
      if (++this.panicked > 1) return; // wait_for_panic(): another CPU is panicking
    } else if (++this.fakePanicked > 1) {
      return;
    }
    this.k.trail('mce_panic', msg, exp ? { exp } : undefined);
    const pending = this.pool.prepareRecords();
    for (const m of pending) if (!(m.status & MCI_STATUS_UC)) this.printMce(m);
    for (const m of pending) if (m.status & MCI_STATUS_UC && (!final || mceCmp(m, final))) this.printMce(m);
    if (final) this.printMce(final);
    if (this.cfg.tolerant !== undefined && this.cpuMissing) this.pr('emerg', "[Hardware Error]: Some CPUs didn't answer in synchronization");
    if (exp) this.pr('emerg', `[Hardware Error]: Machine check: ${exp}`);
    this.panics.push(msg);
    if (!this.fakePanic) this.k.panic(msg);
    this.pr('emerg', `[Hardware Error]: Fake kernel panic: ${msg}`);
  }

  /** ≤5.17 cpu_missing (printed by mce_panic). */
  private cpuMissing = false;

  // ---- the poller ------------------------------------------------------------------------------

  /**
   * machine_check_poll(flags, banks) on one CPU: log CE/UCNA/disabled errors, leave S=1 UC errors
   * for #MC. `banks` is the mask (default: every bank). Since v6.8 every bank read feeds
   * mce_track_storm() first (valid or not), unless mce=no_cmci.
   */
  machineCheckPoll(cpu: number, flags: number, banks?: readonly number[]): boolean {
    let seen = false;
    const mca = this.machine.mca;
    const mask = banks ? new Set(banks) : undefined;
    for (let i = 0; i < Math.min(mca.bankCount, 32); i++) {
      if (mask && !mask.has(i)) continue;
      const m = this.gather(cpu, undefined, (flags & MCP_TIMESTAMP) !== 0);
      m.bank = i;
      m.status = mca.bank(cpu, i).status;
      if (this.k.profile.cmciStormPerBank && !this.cfg.cmciDisabled) this.storm.track(cpu, i, m.status);
      if (!(m.status & MCI_STATUS_VAL)) continue;
      let log = false;
      if (flags & MCP_UC || !(m.status & MCI_STATUS_UC)) log = true;
      else if (!this.cfg.ser) log = false;
      else if (!(m.status & MCI_STATUS_EN)) log = true;
      else if (!(m.status & MCI_STATUS_PCC) && !(m.status & MCI_STATUS_S)) log = true;
      if (!log) {
        this.k.trail('machine_check_poll', `CPU ${cpu} bank ${i}: left for the #MC handler`);
        continue;
      }
      seen = true;
      if (!(flags & MCP_DONTLOG)) {
        this.readAux(m, cpu, i);
        m.severity = this.severity(m, undefined, false).sev;
        if (!(this.cfg.dontLogCe && !mceUsableAddress(m))) this.mceLog(m);
      }
      mca.bank(cpu, i).status = 0n;
    }
    return seen;
  }

  // ---- do_machine_check ------------------------------------------------------------------------

  /** Dispatches what the hardware delivered: #MC handlers, CMCI, poll. */
  handle(ev: MachineCheckEvent): void {
    const exc = ev.cpus.filter((c) => c.delivery === 'exception');
    for (const c of exc.filter((x) => x.shutdown)) this.k.trail('do_machine_check', `CPU ${c.cpu}: #MC while MCIP set: processor shutdown`);
    const live = exc.filter((x) => !x.shutdown);
    if (live.length) this.k.guard(() => this.doMachineCheck(live, ev.missing));
    for (const c of ev.cpus) {
      if (c.delivery === 'cmci') this.k.guard(() => this.thresholdInterrupt(c.cpu));
      else if (c.delivery === 'poll') this.k.guard(() => this.machineCheckPoll(c.cpu, 0));
    }
  }

  // ---- CMCI and the poll timer -------------------------------------------------------------------

  /** jiffies of the model clock (INITIAL_JIFFIES' offset is not modelled). */
  jiffies(): number {
    return Math.round(this.k.now * HZ);
  }

  /** this_cpu_ptr(&mce_banks_owned): every bank takes CMCI on the simulated CPUs (none with mce=no_cmci). */
  ownedBanks(cpu: number): number[] {
    if (this.cfg.cmciDisabled || !this.machine.mca.config.cmci) return [];
    return [...Array(Math.min(this.machine.mca.bankCount, 32)).keys()];
  }

  /** this_cpu_ptr(&mce_poll_banks): banks without CMCI, plus (≥6.8) the banks in a storm. */
  private pollBanks(cpu: number): number[] {
    const owned = new Set(this.ownedBanks(cpu));
    const storm = this.k.profile.cmciStormPerBank ? this.storm.stormBanks(cpu) : [];
    return [...Array(Math.min(this.machine.mca.bankCount, 32)).keys()].filter((b) => !owned.has(b) || storm.includes(b));
  }

  /** intel_threshold_interrupt(): the CMCI handler (≤6.7 first asks cmci_storm_detect()). */
  thresholdInterrupt(cpu: number): void {
    if (!this.k.profile.cmciStormPerBank && this.intel.stormDetect(cpu)) {
      this.k.trail('intel_threshold_interrupt', `CPU ${cpu}: CMCI storm: not polled, left for the poll timer`);
      return;
    }
    this.machineCheckPoll(cpu, MCP_TIMESTAMP, this.ownedBanks(cpu));
  }

  /** round_jiffies(): to a whole second (rounded down if < HZ/4 past it), per-CPU skew, never into the past. */
  private roundJiffies(j: number, cpu: number): number {
    const original = j;
    j += cpu * 3;
    const rem = j % HZ;
    j = rem < HZ / 4 ? j - rem : j - rem + HZ;
    j -= cpu * 3;
    return j > this.jiffies() ? j : original;
  }

  /** __start_timer(): (re)arm the CPU's mce_timer unless it is already due earlier. */
  private startTimer(cpu: number, interval: number): void {
    const t = this.timers.get(cpu);
    if (!t) return;
    const when = this.jiffies() + interval;
    if (t.expires === undefined || when < t.expires) t.expires = this.roundJiffies(when, cpu);
  }

  /** ≤6.7 mce_timer_kick(interval). */
  private timerKickInterval(cpu: number, interval: number): void {
    const t = this.timers.get(cpu);
    if (!t) return;
    this.startTimer(cpu, interval);
    if (interval < t.nextInterval) t.nextInterval = interval;
  }

  /** ≥6.8 mce_timer_kick(bool storm). */
  private timerKickStorm(cpu: number, storm: boolean): void {
    const t = this.timers.get(cpu);
    if (!t) return;
    this.storm.setPollMode(cpu, storm);
    if (storm) this.startTimer(cpu, HZ);
    else t.nextInterval = this.checkInterval * HZ;
  }

  /**
   * mce_timer_fn(): poll mce_poll_banks (≤6.7 then the storm poll of the owned banks and
   * cmci_intel_adjust_timer()); the interval is halved (down to HZ/100) when the poll logged and
   * doubled (up to check_interval) otherwise. Until 6.13 "logged" is mce_notify_irq(), whose bit
   * the early notifier sets and clears itself from the work that runs after this timer: it never
   * sees it, so the interval only doubles; 6.13 tests !mce_gen_pool_empty() instead (the change
   * that also dropped "Machine check events logged"). ≥6.8 in storm mode: next poll in HZ,
   * mce_next_interval untouched.
   */
  private mceTimerFn(cpu: number): void {
    const t = this.timers.get(cpu)!;
    let iv = t.nextInterval;
    const mark = this.logged.length;
    this.machineCheckPoll(cpu, 0, this.pollBanks(cpu));
    if (!this.k.profile.cmciStormPerBank && this.intel.cmciPoll(cpu)) {
      iv = this.intel.adjustTimer(cpu, iv);
      t.nextInterval = iv;
      this.startTimer(cpu, iv);
      return;
    }
    const p = this.k.profile;
    const genPoolCheck = p.major > 6 || (p.major === 6 && p.minor >= 13);
    if (genPoolCheck && this.logged.length > mark) iv = Math.max(Math.floor(iv / 2), Math.floor(HZ / 100));
    else iv = Math.min(iv * 2, this.checkInterval * HZ);
    if (p.cmciStormPerBank && this.storm.pollMode(cpu)) {
      this.startTimer(cpu, HZ);
    } else {
      t.nextInterval = iv;
      this.startTimer(cpu, iv);
    }
  }

  /** Model time passes to `until` (seconds): every mce_timer due on the way runs, in order, at its time. */
  advanceTo(until: number): void {
    const k = this.k;
    const end = Math.round(until * HZ);
    for (;;) {
      if (k.panicked && k.panicMode === 'stop') break;
      let cpu = -1;
      let at = Infinity;
      for (const [c, t] of this.timers) {
        if (t.expires !== undefined && t.expires < at && this.machine.cpus.isOnline(c)) {
          at = t.expires;
          cpu = c;
        }
      }
      if (cpu < 0 || at > end) break;
      k.now = Math.max(k.now, at / HZ);
      this.timers.get(cpu)!.expires = undefined;
      k.guard(() => this.mceTimerFn(cpu));
      k.runWork();
    }
    k.now = Math.max(k.now, until);
  }

  /** mce_no_way_out(): grade every valid bank; the first PANIC decides. */
  private noWayOut(c: McCpu): void {
    const mca = this.machine.mca;
    for (let i = 0; i < Math.min(mca.bankCount, 32); i++) {
      c.m.status = mca.bank(c.cpu, i).status;
      if (!(c.m.status & MCI_STATUS_VAL)) continue;
      c.valid.push(i);
      c.m.bank = i;
      const s = this.severity(c.m, c.chk, true);
      if (s.sev >= MCE_PANIC_SEVERITY) {
        this.readAux(c.m, c.cpu, i);
        c.msg = s.msg;
        c.noWayOut = true;
        return;
      }
    }
  }

  /** __mc_scan_banks(). */
  private scanBanks(c: McCpu): number[] {
    const mca = this.machine.mca;
    const toclear: number[] = [];
    for (const i of c.valid) {
      c.m.misc = 0n;
      c.m.addr = 0n;
      c.m.bank = i;
      c.m.status = mca.bank(c.cpu, i).status;
      if (!(c.m.status & MCI_STATUS_VAL)) continue;
      if (!(c.m.status & (this.cfg.ser ? MCI_STATUS_S : MCI_STATUS_UC)) && !c.noWayOut) continue;
      c.taint = true;
      const sev = this.severity(c.m, c.chk, true).sev;
      if ((sev === MCE_KEEP_SEVERITY || sev === MCE_UCNA_SEVERITY) && !c.noWayOut) continue;
      toclear.push(i);
      if (sev === MCE_NO_SEVERITY) continue;
      this.readAux(c.m, c.cpu, i);
      c.m.severity = sev;
      this.mceLog(c.m);
      if (sev > c.worst) {
        c.final = { ...c.m };
        c.worst = sev;
      }
    }
    c.m = { ...c.final };
    return toclear;
  }

  /** mce_timed_out(): true when the wait is over (the caller bails out). */
  private timedOut(missing: readonly number[], msg: string): void {
    if (!this.cfg.monarchTimeout) return;
    const online = missing.filter((c) => this.machine.cpus.isOnline(c));
    if (this.cfg.tolerant !== undefined) {
      // ≤5.17: panic only with tolerant <= 1; cpu_missing makes a later mce_panic mention it.
      // The holdout list is printed before that panic since 7bb39313cd62 "x86/mce: Make
      // mce_timed_out() identify holdout CPUs" (v5.12), inside the tolerant check.
      if (this.cfg.tolerant <= 1) {
        if (online.length) this.pr('emerg', `CPUs not responding to MCE broadcast (may include false positives): ${cpuList(online)}`);
        this.mcePanic(msg, undefined, undefined);
      }
      this.cpuMissing = true;
      return;
    }
    if (online.length) this.pr('emerg', `CPUs not responding to MCE broadcast (may include false positives): ${cpuList(online)}`);
    this.mcePanic(msg, undefined, undefined);
  }

  /** mce_reign(): the monarch grades every CPU's worst record. */
  private reign(cpus: McCpu[]): void {
    let globalWorst = 0;
    let worst: McCpu | undefined;
    for (const c of [...cpus].sort((a, b) => a.cpu - b.cpu)) {
      if (c.final.severity > globalWorst) {
        globalWorst = c.final.severity;
        worst = c;
      }
    }
    const tol3 = this.cfg.tolerant === 3;
    if (worst && globalWorst >= MCE_PANIC_SEVERITY && !tol3) {
      const msg = this.severity(worst.final, worst.chk, true).msg;
      this.mcePanic('Fatal machine check', worst.final, msg);
    }
    if (globalWorst <= MCE_KEEP_SEVERITY && !tol3) this.mcePanic('Fatal machine check from unknown source', undefined, undefined);
  }

  /** do_machine_check() on every CPU that took the #MC (run phase by phase, as the rendezvous orders them). */
  private doMachineCheck(entering: CpuCheck[], missing: readonly number[]): void {
    const k = this.k;
    const cpus: McCpu[] = entering.map((chk) => {
      const m = this.gather(chk.cpu, chk, true);
      return { chk, cpu: chk.cpu, m, final: { ...m }, noWayOut: false, msg: undefined, killCurrentTask: false, lmce: false, order: -1, worst: 0, valid: [], taint: false };
    });
    for (const c of cpus) {
      this.noWayOut(c);
      if (!(c.m.mcgstatus & MCG_STATUS_RIPV)) c.killCurrentTask = true;
      c.lmce = (c.m.mcgstatus & MCG_STATUS_LMCES) !== 0n;
      k.trail('do_machine_check', `CPU ${c.cpu}: mcgstatus ${hx(c.m.mcgstatus)}${c.noWayOut ? `, no way out: ${c.msg}` : ''}${c.lmce ? ', local' : ''}`);
    }
    for (const c of cpus) if (c.lmce && c.noWayOut) this.mcePanic('Fatal local machine check', c.m, c.msg);

    // mce_start(): rendezvous of the broadcast CPUs; the first to call in is the monarch.
    const bcast = cpus.filter((c) => !c.lmce);
    let rendezvous = false;
    if (bcast.length && this.cfg.monarchTimeout) {
      const absent = missing.filter((c) => this.machine.cpus.isOnline(c));
      if (absent.length) {
        k.now += this.cfg.monarchTimeout / 1e6;
        for (const c of bcast) {
          this.timedOut(absent, 'Timeout: Not all CPUs entered broadcast exception handler');
          c.order = -1;
        }
      } else {
        const nwo = bcast.some((c) => c.noWayOut);
        bcast.forEach((c, i) => {
          c.order = i + 1;
          c.noWayOut = nwo;
        });
        rendezvous = true;
        k.trail('mce_start', `monarch CPU ${bcast[0]!.cpu}, ${bcast.length} CPU(s)${nwo ? ', global no way out' : ''}`);
      }
    }

    // Scanning, one CPU after the other in call-in order (shared banks are seen once).
    for (const c of [...bcast, ...cpus.filter((x) => x.lmce)]) {
      const toclear = this.scanBanks(c);
      if (!c.noWayOut) for (const i of toclear) this.machine.mca.bank(c.cpu, i).status = 0n;
    }

    // mce_end()
    if (rendezvous) this.reign(bcast);
    for (const c of bcast) {
      if (this.cfg.tolerant !== undefined) {
        // ≤5.17: a failed mce_end() falls back to the local grade; no_way_out then panics whatever mce_end() said.
        if (c.order < 0) c.noWayOut = c.worst >= MCE_PANIC_SEVERITY;
        if (this.cfg.tolerant === 3) c.killCurrentTask = false;
        else if (c.noWayOut) this.mcePanic('Fatal machine check on current CPU', c.m, c.msg);
        continue;
      }
      if (c.order < 0) {
        if (!c.noWayOut) c.noWayOut = c.worst >= MCE_PANIC_SEVERITY;
        if (c.noWayOut) this.mcePanic('Fatal machine check on current CPU', c.m, c.msg);
      }
    }
    for (const c of cpus.filter((x) => x.lmce)) {
      if (c.worst >= MCE_PANIC_SEVERITY && this.cfg.tolerant !== 3) {
        const msg = this.severity(c.m, c.chk, true).msg;
        this.mcePanic('Local fatal machine check!', c.m, msg);
      }
    }

    for (const c of cpus) {
      if (c.taint && !this.tainted) {
        this.tainted = true;
        k.log.print('warn', 'Disabling lock debugging due to kernel taint');
      }
      this.afterScan(c);
      this.machine.mca.setMcgStatus(c.cpu, 0n);
    }
  }

  /** The end of do_machine_check(): user-mode kill via task_work, SEAM, kernel fixup. */
  private afterScan(c: McCpu): void {
    const m = c.m;
    if (c.worst !== MCE_AR_SEVERITY && !c.killCurrentTask) return;
    if ((m.cs & 3) === 3) {
      const task = this.currentOn(c.cpu);
      if (!task) return;
      // Since v6.5 the address decides; before, only kill_current_task (no RIPV) did.
      const now = this.k.profile.mceUserUsableAddressCheck ? !mceUsableAddress(m) : c.killCurrentTask;
      this.queueTaskWork(task, m, c.msg, now ? 'kill_me_now' : 'kill_me_maybe');
    } else if (m.mcgstatus & MCG_STATUS_SEAM_NR && this.k.profile.mceSeamNonRoot) {
      if (mceUsableAddress(m)) {
        const p = this.k.alloc.pfnToPage(Number((m.addr & MCI_ADDR_PHYSADDR) >> PAGE_SHIFT));
        if (p) p.set(PG.hwpoison);
      }
    } else {
      if (m.kflags & MCE_IN_KERNEL_RECOV) {
        // fixup_exception(): the copy returns an error / short count.
        this.k.trail('fixup_exception', `CPU ${c.cpu}: machine-check-safe fixup at 0x${hx(m.ip)}`);
      }
      if (m.kflags & MCE_IN_KERNEL_COPYIN) {
        const task = this.currentOn(c.cpu);
        if (task) this.queueTaskWork(task, m, c.msg, 'kill_me_never');
      }
    }
  }

  private currentOn(cpu: number): Task | undefined {
    return this.current.get(cpu) ?? this.injector?.();
  }

  /** queue_task_work(). */
  private queueTaskWork(task: Task, m: Mce, msg: string | undefined, func: TaskWork['func']): void {
    let tw = this.taskWork.get(task);
    if (!tw) {
      tw = { task, count: 0, addr: m.addr, kflags: m.kflags, ripv: (m.mcgstatus & MCG_STATUS_RIPV) !== 0n, wholePage: wholePage(this.cfg, m), func };
      this.taskWork.set(task, tw);
    }
    tw.count++;
    this.k.trail('queue_task_work', `${func} for ${task.comm}:${task.tid} (count ${tw.count})`);
    if (tw.count > 10) this.mcePanic('Too many consecutive machine checks while accessing user data', m, msg);
    if (tw.count > 1 && tw.addr >> PAGE_SHIFT !== m.addr >> PAGE_SHIFT) this.mcePanic('Consecutive machine checks to different user pages', m, msg);
  }

  /** Return to user mode: run each task's queued MCE callback (task_work_run). */
  runTaskWork(): void {
    for (const tw of [...this.taskWork.values()]) {
      this.taskWork.delete(tw.task);
      if (this.k.panicked && this.k.panicMode === 'stop') return;
      if (!tw.task.group.alive) continue;
      this.k.guard(() => this[tw.func === 'kill_me_now' ? 'killMeNow' : tw.func === 'kill_me_maybe' ? 'killMeMaybe' : 'killMeNever'](tw));
    }
  }

  /** kill_me_now(). */
  private killMeNow(tw: TaskWork): void {
    this.k.forceSig(tw.task, { signo: SIGBUS, code: SI_KERNEL });
  }

  /** kill_me_maybe(). */
  private killMeMaybe(tw: TaskWork): void {
    this.pr('err', `Uncorrected hardware memory error in user-access at ${hx(tw.addr)}`);
    let flags = MF_ACTION_REQUIRED;
    if (!tw.ripv) flags |= MF_MUST_KILL;
    const pfn = Number((tw.addr & MCI_ADDR_PHYSADDR) >> PAGE_SHIFT);
    const ret = this.withCurrent(tw.task, () => memoryFailure(this.k, pfn, flags));
    if (ret === undefined) return; // panicked
    if (ret === 0) {
      this.setMceNospec(pfn);
      return;
    }
    if (ret === -EHWPOISON || ret === -EOPNOTSUPP) return;
    this.pr('err', 'Memory error not recovered');
    this.killMeNow(tw);
  }

  /** kill_me_never(). */
  private killMeNever(tw: TaskWork): void {
    this.pr('err', `Kernel accessed poison in user space at ${hx(tw.addr)}`);
    const pfn = Number((tw.addr & MCI_ADDR_PHYSADDR) >> PAGE_SHIFT);
    if (this.withCurrent(tw.task, () => memoryFailure(this.k, pfn, 0)) === 0) this.setMceNospec(pfn);
  }

  /** Pages soft-offlined so far (requested and now PG_hwpoison). */
  softOfflined(): number[] {
    return [...this.softOfflineRequested].filter((pfn) => this.k.alloc.pfnToPage(pfn)?.test(PG.hwpoison)).sort((a, b) => a - b);
  }
}

/** Levels by name (for tests). */
export { MCE_AO_SEVERITY, MCE_AR_SEVERITY, MCE_PANIC_SEVERITY, MCE_KEEP_SEVERITY };
