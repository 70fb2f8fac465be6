// The x86 machine-check part of the sim target: builds the simulated hardware (CPUs + MCA banks)
// from `machine:` and the kernel's MCE subsystem on top of it, and runs the `mce` and `corrected`
// steps (kernel-model.md §19, mce-test.md §3 and §6).
import { readFileSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import type { StepConfig } from '../../case/schema.js';
import type { StepObservation } from '../target.js';
import { parseSize } from '../../case/size.js';
import { DEFAULT_CPU_MODEL, Machine } from '../../../tsrc/hw/machine.js';
import type { CpuModel, ErrorRecord } from '../../../tsrc/hw/machine.js';
import type { CpuContext } from '../../../tsrc/hw/cpu.js';
import { MceParseError, emptyRecord, groupInjections, injectionToMachine, isException, parseMce, printRecord, validateRecords } from '../../../tsrc/tools/mce-inject/index.js';
import type { MceRecord } from '../../../tsrc/tools/mce-inject/index.js';
import { MachineCheck, SEVERITY_LEVEL_NAMES } from '../../../tsrc/kernel/arch/x86/kernel/cpu/mce/core.js';
import type { Mce } from '../../../tsrc/kernel/arch/x86/kernel/cpu/mce/internal.js';
import { CEC_COUNT_MASK } from '../../../tsrc/kernel/drivers/ras/cec.js';
import { PageThreshold } from '../../../tsrc/tools/mcelog/page.js';
import { softOfflinePageStore } from '../../../tsrc/kernel/drivers/base/memory.js';
import type { Kernel } from '../../../tsrc/kernel/kernel.js';
import type { Task } from '../../../tsrc/kernel/sched.js';
import { registerStepAction, registerWorldSetup } from './extensions.js';
import { SetupError } from './world.js';
import type { World } from './world.js';
import { StepError } from './index.js';

const bit = (n: number): bigint => 1n << BigInt(n);
const MCI_STATUS_VAL = bit(63), MCI_STATUS_MISCV = bit(59), MCI_STATUS_ADDRV = bit(58);
const MCG_STATUS_RIPV = 1n, MCG_STATUS_EIPV = 2n;
/** A pre-SER Nehalem-EP part (family 6 model 0x1a/0x2e class). */
const NOSER_CPU: CpuModel = { vendor: 'intel', family: 6, model: 0x2e, stepping: 6, cpuid: 0x206e6, microcode: 0xd };
/** Corrected memory-controller read error with a usable address (kernel-model.md §23). */
const CE_STATUS = 0x9c0000000000009fn;

/** Per-World MCE state the steps share. */
interface MceWorld {
  machine: Machine;
  mc: MachineCheck;
  /** Canonical records injected and logged by the last mce/corrected step. */
  lastStep?: { logged: string[]; injected: string[] };
  allInjected: string[];
  pageThreshold?: PageThreshold;
  injectorTask?: Task;
  /** mce_panic() calls already reported by an earlier step. */
  seenPanics: number;
}

const state = new WeakMap<World, MceWorld>();

/** The MCE state of a world (tests use it to look inside). */
export function mceWorld(w: World): MceWorld | undefined {
  return state.get(w);
}

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** The fields of a record the kernel logs, in mce-inject's canonical form (TSC/TIME/PROCESSOR/flags dropped). */
function canonical(r: Pick<MceRecord, 'cpu' | 'bank' | 'status' | 'mcgStatus' | 'addr' | 'misc' | 'ip' | 'cs'>): string {
  const rec: MceRecord = { ...emptyRecord(), cpu: r.cpu, bank: r.bank, status: r.status, mcgStatus: r.mcgStatus, addr: r.addr, misc: r.misc, ip: r.ip, cs: r.cs };
  // A record without an IP has no RIP (the kernel saves ip/cs only with RIPV|EIPV).
  return printRecord(rec).trimEnd().split('\n').filter((l) => !/^(TSC|TIME|PROCESSOR) /.test(l) && !(r.ip === 0n && l.startsWith('RIP '))).join(' ');
}

function canonicalLogged(m: Mce): string {
  return canonical({ cpu: m.cpu, bank: m.bank, status: m.status, mcgStatus: m.mcgstatus, addr: m.addr, misc: m.misc, ip: m.ip, cs: m.cs });
}

/**
 * What the kernel can log of an injected record: MISC only with MISCV, ADDR only with ADDRV (masked
 * to the MISC LSB with SER, mce_read_aux()), RIP only for an exception whose MCG_STATUS has
 * RIPV or EIPV (mce_gather_info()); a polled record has no RIP.
 */
function canonicalInjected(r: MceRecord, ser: boolean): string {
  const misc = r.status & MCI_STATUS_MISCV ? r.misc : 0n;
  let addr = r.status & MCI_STATUS_ADDRV ? r.addr : 0n;
  if (addr && ser && r.status & MCI_STATUS_MISCV) {
    const sh = r.misc & 0x3fn;
    addr = (addr >> sh) << sh;
  }
  const withIp = isException(r) && (r.mcgStatus & (MCG_STATUS_RIPV | MCG_STATUS_EIPV)) !== 0n;
  return canonical({ ...r, addr, misc, ip: withIp ? r.ip : 0n, cs: withIp ? r.cs : 0 });
}

function buildMachine(w: World): MceWorld {
  const m = w.cfg.machine ?? {};
  const k = w.k;
  const cpus = m.cpus ?? 2;
  const sockets = m.sockets ?? 1;
  if (cpus % sockets) throw new SetupError(`machine.cpus (${cpus}) must be a multiple of machine.sockets (${sockets})`);
  const mc = m.mca ?? {};
  const ser = mc.ser ?? true;
  const banks = mc.banks ?? 10;
  const shared = mc['shared-banks'] ?? [7, 8].filter((b) => b < banks);
  let machine: Machine;
  try {
    machine = new Machine({
      sockets,
      coresPerSocket: cpus / sockets,
      threadsPerCore: 1,
      memoryBytes: BigInt(parseSize(m.memory ?? '4G')),
      nodes: m.nodes ?? 1,
      holes: (m.holes ?? []).map((h) => ({ start: BigInt(parseSize(h.start)), end: BigInt(parseSize(h.start)) + BigInt(parseSize(h.size)) })),
      mca: { banks, ser, cmci: mc.cmci ?? true, lmce: mc.lmce ?? true, tes: ser, sharedBanks: shared },
      cpuModel: ser ? DEFAULT_CPU_MODEL : NOSER_CPU,
    });
    for (const c of m['offline-cpus'] ?? []) machine.cpus.setOnline(c, false);
  } catch (e) {
    throw new SetupError(`machine: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (mc.tolerant !== undefined && !k.profile.tolerant) throw new SetupError(`kernel ${k.profile.version} has no tolerant knob (removed in 5.18)`);
  // cec_init(): Intel lowered the action threshold to 2 ("RAS/CEC: Reduce offline page threshold for Intel systems", v6.2).
  const cecDefault = k.profile.major > 6 || (k.profile.major === 6 && k.profile.minor >= 2) ? 2 : CEC_COUNT_MASK;
  const mcheck = new MachineCheck(k, machine, {
    cfg: {
      ser,
      monarchTimeout: mc['monarch-timeout-us'] ?? 1_000_000,
      tolerant: k.profile.tolerant ? (mc.tolerant ?? 1) : undefined,
      dontLogCe: false,
      printAll: false,
      ignoreCe: false,
      cmciDisabled: !(mc.cmci ?? true),
      lmceDisabled: !(mc.lmce ?? true),
    },
    fakePanic: k.panicMode === 'fake',
    cec: m.cec?.enabled ? { threshold: m.cec.threshold ?? cecDefault } : undefined,
  });
  const st: MceWorld = { machine, mc: mcheck, allInjected: [], seenPanics: 0 };
  const pt = m['page-threshold'];
  if (pt) {
    st.pageThreshold = new PageThreshold({ count: pt.count, period: pt.period ?? 24 * 3600 }, (phys) => {
      mcheck.softOfflineRequested.add(Number(phys >> 12n));
      return k.guard(() => softOfflinePageStore(k, hex(phys))) ?? -5;
    });
    // mcelog reads /dev/mcelog: corrected errors with an address go to its page accounting.
    mcheck.consumers.push((rec) => {
      if (!(rec.status & (1n << 61n)) && rec.status & MCI_STATUS_ADDRV) st.pageThreshold!.account(rec.addr, k.now);
    });
  }
  mcheck.injector = () => injectorTask(k, st);
  return st;
}

/** The process that wrote the records to /dev/mcelog (mce-inject), when the step names none. */
function injectorTask(k: Kernel, st: MceWorld): Task {
  if (!st.injectorTask || !st.injectorTask.group.alive) st.injectorTask = k.createProcess('mce-inject', 'mce-inject', { sigbus: 'default' }).leader;
  return st.injectorTask;
}

registerWorldSetup((w) => {
  const st = buildMachine(w);
  state.set(w, st);
  w.machine = st.machine;
  w.answerHooks.push((e, ans) => {
    if (e['soft-offlined']) ans.softOfflined = st.mc.softOfflined().map((p) => hex(p));
    if (e.records !== undefined) {
      if (e === w.cfg.expect || !st.lastStep) {
        ans.records = { logged: st.mc.logged.map(canonicalLogged).sort(), injected: [...st.allInjected].sort() };
      } else {
        ans.records = st.lastStep;
      }
    }
  });
});

const CONTEXTS: Record<string, CpuContext> = { user: 'user', kernel: 'kernel', 'kernel-recoverable': 'kernel-recov', irq: 'irq' };

/** Fills {phys:REF} / {pfn:REF} templates from the step's resolved references. */
function expandRecords(text: string, obs: StepObservation): string {
  return text.replace(/\{(phys|pfn):([^}]+)\}/g, (whole, kind: 'phys' | 'pfn', ref: string) => {
    const v = obs.answers.refs?.[ref]?.[kind];
    if (!v) throw new StepError(`mce: ${whole}: "${ref}" has no ${kind}`);
    return v;
  });
}

/** Starts a step: marks what the step's observation will report. */
function begin(st: MceWorld): { logged: number; graded: number } {
  return { logged: st.mc.logged.length, graded: st.mc.graded.length };
}

/** Ends a step: task work on return to user, severity and records for the observation. */
function finish(st: MceWorld, obs: StepObservation, mark: { logged: number; graded: number }, injected: string[]): void {
  st.mc.runTaskWork();
  const graded = st.mc.graded.slice(mark.graded);
  let worst = graded[0];
  for (const g of graded) if (worst && g.sev > worst.sev) worst = g;
  if (worst) obs.severity = { level: SEVERITY_LEVEL_NAMES[worst.sev] ?? String(worst.sev), msg: worst.msg };
  const logged = st.mc.logged.slice(mark.logged).map(canonicalLogged).sort();
  st.lastStep = { logged, injected: [...injected].sort() };
  st.allInjected.push(...injected);
  obs.answers.records = st.lastStep;
}

registerStepAction('mce', (w, step: StepConfig, obs) => {
  const st = state.get(w)!;
  const s = step.mce!;
  const k = w.k;
  let text: string;
  if (s.records !== undefined) text = s.records;
  else if (s.file !== undefined) {
    const path = w.caseFile ? resolvePath(dirname(w.caseFile), s.file) : s.file;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new StepError(`mce: cannot read ${s.file}: ${e instanceof Error ? e.message : String(e)}`);
    }
  } else if (s.page) {
    text = 'CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS 7';
  } else throw new StepError('mce: give records, file or page');
  let records: MceRecord[];
  try {
    records = parseMce(expandRecords(text, obs));
  } catch (e) {
    if (e instanceof MceParseError) throw new StepError(`mce: ${e.line}:${e.col}: ${e.detail}`);
    throw e;
  }
  if (s.page) {
    const phys = BigInt(obs.answers.refs?.[s.page]?.phys ?? hex(w.pfnOf(s.page) * 4096));
    for (const r of records) {
      if (!(r.status & MCI_STATUS_VAL)) continue;
      if (r.addr === 0n) {
        r.addr = phys;
        r.status |= MCI_STATUS_ADDRV;
      }
      if (r.misc === 0n) {
        r.misc = 0x8cn;
        r.status |= MCI_STATUS_MISCV;
      }
    }
  }
  const errors = validateRecords(records, st.machine);
  if (errors.length) throw new StepError(`mce: record ${errors[0]!.index + 1}: ${errors[0]!.message}`);
  const { injections } = groupInjections(records);
  // What the CPUs run: the named task runs on the trigger's CPU.
  const task = s.process ? w.task(s.process) : undefined;
  const ctx: CpuContext = s.context ? CONTEXTS[s.context]! : task ? 'user' : 'kernel';
  const mark = begin(st);
  const injected: string[] = [];
  for (const r of records) if (r.status & MCI_STATUS_VAL) injected.push(canonicalInjected(r, st.machine.mca.config.ser));
  for (const cpu of s['no-answer'] ?? []) {
    if (!st.machine.cpus.exists(cpu)) throw new StepError(`mce: no-answer: cpu ${cpu} does not exist`);
    st.machine.setResponding(cpu, false);
  }
  st.mc.current.clear();
  st.mc.copyinCpus.clear();
  try {
    for (const inj of injections) {
      if (k.panicked && k.panicMode === 'stop') break;
      const cpu = inj.trigger.cpu;
      st.machine.cpus.run(cpu, ctx, ctx === 'user' || task ? { pid: task?.group.pid ?? 0, comm: task?.comm ?? 'mce-inject' } : null);
      if (task) st.mc.current.set(cpu, task);
      if (ctx === 'kernel-recov' && task) st.mc.copyinCpus.add(cpu);
      const mi = injectionToMachine(inj, st.machine.cpus.onlineIds());
      // A record without RIP takes the frame of what the CPU runs (the step's context).
      const recs: ErrorRecord[] = mi.records.map((r) => {
        if (r.cs === 0 && (r.ip ?? 0n) === 0n) {
          const { cs: _cs, ip: _ip, ...rest } = r;
          return rest;
        }
        return r;
      });
      const ev = st.machine.raise(recs, mi.options);
      k.trail('mce-inject', `injection on CPU ${cpu}: ${ev.cpus.map((c) => `${c.cpu}:${c.delivery}`).join(' ')}${ev.missing.length ? `, not answering: ${ev.missing.join(',')}` : ''}`);
      st.mc.handle(ev);
      // The injected values were mce-inject's fake MSRs (injectm): gone once handled.
      for (const r of recs) st.machine.mca.bank(r.cpu, r.bank).clear();
    }
  } finally {
    for (const cpu of s['no-answer'] ?? []) st.machine.setResponding(cpu, true);
  }
  finish(st, obs, mark, injected);
  // With fake_panic the machine goes on: the step reports the first (logged) mce_panic() message.
  if (k.panicMode === 'fake' && st.mc.panics.length > st.seenPanics) obs.panic = st.mc.panics[st.seenPanics];
  st.seenPanics = st.mc.panics.length;
  return 0;
});

// `wait`: as the built-in step (time passes, queued work runs), with the per-CPU MCE poll timers
// (mce_timer_fn: check_interval polling, CMCI storm polling) firing at their times on the way.
registerStepAction('wait', (w, step) => {
  const st = state.get(w)!;
  const secs = typeof step.wait === 'number' ? step.wait : parseFloat(String(step.wait));
  st.mc.advanceTo(w.k.now + secs);
  w.k.runWork();
  return 0;
});

registerStepAction('corrected', (w, step, obs) => {
  const st = state.get(w)!;
  const s = step.corrected!;
  const k = w.k;
  const pfn = w.pfnOf(s.page);
  const cpu = s.cpu ?? 0;
  const shared = st.machine.mca.config.sharedBanks ?? [];
  const bank = s.bank ?? shared[0] ?? 1;
  if (!st.machine.cpus.isOnline(cpu)) throw new StepError(`corrected: cpu ${cpu} not online`);
  if (bank >= st.machine.mca.bankCount) throw new StepError(`corrected: bank ${bank} out of range (${st.machine.mca.bankCount} banks)`);
  const mark = begin(st);
  const injected: string[] = [];
  const count = s.count ?? 1;
  for (let i = 0; i < count; i++) {
    // Time passes between the errors: the poll timers due on the way run first.
    if (i > 0 && s.interval) st.mc.advanceTo(k.now + s.interval);
    if (k.panicked && k.panicMode === 'stop') break;
    const rec: ErrorRecord = { cpu, bank, status: CE_STATUS, addr: BigInt(pfn) * 4096n, misc: 0x8cn, delivery: 'cmci' };
    const ev = st.machine.raise([rec], { write: 'hardware', delivery: 'cmci' });
    // What the bank holds after the hardware logged it (count field, OVER), as the handler will read it.
    const b = st.machine.mca.bank(cpu, bank);
    injected.push(canonical({ cpu, bank, status: b.status, mcgStatus: st.machine.mca.mcgStatus(cpu), addr: b.addr, misc: b.misc, ip: 0n, cs: 0 }));
    // The CMCI fires only if the bank signals it (CMCI_EN set and the count crossed the MCi_CTL2
    // threshold); in a storm the error waits in the bank for the poll timer.
    const signal = ev.posts[0]?.result.signal;
    if (ev.cpus.some((c) => c.delivery === 'cmci') && signal !== 'cmci') {
      k.trail('cmci', `CPU ${cpu} bank ${bank}: corrected error count ${(b.status >> 38n) & 0x7fffn}, no CMCI (MCi_CTL2 ${hex(b.ctl2)}): left in the bank`);
    } else {
      st.mc.handle(ev);
    }
    k.runWork();
  }
  finish(st, obs, mark, injected);
  return 0;
});
