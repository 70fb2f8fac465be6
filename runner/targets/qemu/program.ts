// Translates a loaded case into the agent's line program (qemu/PROTOCOL.md) and records what the
// report translator needs: ref names, step kinds, MCE injections. Cases the real kernel cannot
// express are refused with a reason (→ TAP skip).
import type { LoadedCase } from '../../case/load.js';
import type { Expectation, MappingConfig, StepConfig } from '../../case/schema.js';
import { parseSize } from '../../case/size.js';
import { parseMce } from '../../../tsrc/tools/mce-inject/index.js';

export interface Ref {
  /** The case's text, e.g. "victim.buf[3]". */
  name: string;
  line: string;
}

export interface McePlan {
  step: number;
  records?: string;
  page?: string;
  process?: string;
  corrected?: { count: number; bank: number };
}

export interface Program {
  text: string;
  refs: Map<string, Ref>;
  mce: McePlan[];
  /** Process names in creation order (workload then forks). */
  processes: string[];
}

export class Unsupported extends Error {}

const MOUNT: Record<string, string> = { ext4: '/mnt/sda', tmpfs: '/mnt/tmp', ramfs: '/mnt/ramfs', hugetlbfs: '/mnt/huge' };
const PROC_PAGE = /^([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)(?:\[(\d+)\])?(?:\+(0x[0-9a-fA-F]+|\d+))?$/;
const FILE_PAGE = /^file:([A-Za-z_][\w.-]*)(?:\[(\d+)\])?$/;

function list(v: boolean | number[] | undefined, dflt: boolean): string {
  if (v === undefined) return dflt ? '*' : '-';
  if (v === true) return '*';
  if (v === false || v.length === 0) return '-';
  return v.join(',');
}

function seedOf(s: string): number {
  let h = 7;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) % 0x7fffff;
  return h + 1;
}

function isPageRef(v: string): boolean {
  return PROC_PAGE.test(v) || FILE_PAGE.test(v) || /^(pfn|phys):/.test(v) || /^(free|kernel|slab)(\[\d+\])?$/.test(v) || v === 'zero';
}

/** Every page reference a case uses, in order of first use. */
function collectRefs(c: LoadedCase): string[] {
  const out: string[] = [];
  const add = (r: string | undefined): void => {
    if (r && r !== 'none' && isPageRef(r) && !out.includes(r)) out.push(r);
  };
  const fromExpect = (e: Expectation | undefined): void => {
    if (!e) return;
    for (const s of e.signals ?? []) add(s.addr);
    for (const k of ['kpageflags', 'data', 'pagemap'] as const) for (const r of Object.keys(e[k] ?? {})) add(r);
    for (const r of e['soft-offlined'] ?? []) add(r);
    for (const p of [...(e.log ?? []), ...(e['log-exact'] ?? []), ...(e['log-not'] ?? [])]) for (const m of p.matchAll(/\{(?:pfn|addr|phys):([^}]+)\}/g)) add(m[1]);
  };
  for (const s of c.config.steps ?? []) {
    for (const k of ['corrupt-pfn', 'unpoison-pfn', 'hard-offline', 'soft-offline', 'swap-out'] as const) add(s[k]);
    add(s.madvise?.page);
    add(s.access?.page);
    add(s.mce?.page);
    add(s.corrected?.page);
    if (s.mce?.records) for (const m of s.mce.records.matchAll(/\{phys:([^}]+)\}/g)) add(m[1]);
    fromExpect(s.expect);
  }
  fromExpect(c.config.expect);
  return out;
}

interface MapInfo {
  m: MappingConfig;
  seed: number;
}

/** The refusal reason for what the VM cannot express, or undefined. */
export function unsupportedReason(c: LoadedCase, profile: string, vmMemoryMb: number): string | undefined {
  const m = c.config.machine ?? {};
  const want = m.kernel ?? '6.12';
  if (want !== profile) return `the booted kernel is ${profile}, the case wants ${want}`;
  if ((m.cpus ?? 1) > 1 && (c.config.steps ?? []).some((s) => s.mce?.['no-answer']?.length)) return 'the VM has 1 CPU (no rendezvous to miss)';
  if ((m.nodes ?? 1) > 1) return 'the VM has one NUMA node';
  if ((m.sockets ?? 1) > 1) return 'the VM has one socket';
  if (m.holes?.length) return 'the VM has no configurable memory holes';
  if (m.swap !== undefined && parseSize(m.swap) > 0n && c.source.includes('swap')) return 'swap is not set up in the VM';
  if (m.panic === 'fake') return 'fake_panic is not available on the real kernel';
  if (m.mca && Object.keys(m.mca).length > 0) return 'QEMU emulates a fixed MCA (10 banks, SER, no CMCI/LMCE)';
  if (m.cec?.enabled !== undefined) return 'the RAS CEC is fixed by the kernel build';
  if (m['page-threshold']) return 'no mcelog/rasdaemon page threshold in the VM';
  if (m['hwpoison-inject'] === false) return 'the VM always loads hwpoison_inject';
  if (m.root === false) return 'the agent runs as root';
  if (m.model && Object.keys(m.model).length > 0) return 'machine.model knobs (races, mlock timing) are simulator-only';
  if (m.hugepages?.['1G']) return 'no 1G huge pages in the VM';
  if ((m.hugepages?.['2M'] ?? 0) * 2 > vmMemoryMb / 2) return `too many huge pages for a ${vmMemoryMb}M VM`;
  const w = c.config.workload ?? {};
  for (const d of w.devices ?? []) if (!(d.fs in MOUNT)) return `filesystem ${d.fs} is not available in the VM`;
  for (const f of w.files ?? []) {
    if (f.writeback?.length) return 'pages held under writeback cannot be arranged';
    if (f.huge === '1G') return 'no 1G huge pages in the VM';
  }
  let pages = 0;
  for (const p of w.processes ?? []) {
    if (p.cpu) return 'the VM has 1 CPU';
    for (const t of p.threads ?? []) if (t.cpu) return 'the VM has 1 CPU';
    for (const mp of p.mappings ?? []) {
      if (mp.ksm) return 'KSM merging is not arranged by the agent yet';
      if (mp['swapped-out']?.length || mp['swap-cache']?.length) return 'swap is not set up in the VM';
      if (mp.huge === '1G') return 'no 1G huge pages in the VM';
      pages += mp.pages;
    }
  }
  if (pages * 4 > vmMemoryMb * 1024 * 0.6) return `the workload does not fit a ${vmMemoryMb}M VM`;
  for (const r of collectRefs(c)) if (/^(kernel|slab)/.test(r)) return 'kernel/slab pages cannot be named on the real kernel';
  if (/\bfree-huge(\[|\b)/.test(c.source)) return 'free-huge[N] pages are not located by the agent yet';
  for (const s of c.config.steps ?? []) {
    if (s['swap-out']) return 'swap is not set up in the VM';
    if (s.mce) {
      const ctx = s.mce.context ?? 'user';
      if (ctx !== 'user') return `machine checks in ${ctx} context are not injected (only user mode is safe to aim at)`;
      if (s.mce.file) return 'mce record files are not supported by the qemu target yet';
      const why = recordsUnsupported(s.mce.records);
      if (why) return why;
    }
    if (s.corrected) return 'corrected errors are not injected by the qemu target yet';
  }
  return undefined;
}

/**
 * What QEMU's `mce` monitor command cannot deliver: it sets the bank and MCG_STATUS and raises a
 * broadcast-free #MC for every UC error (a CE only sits in the bank for the poller). There is no
 * LMCE (MCG_CAP.LMCE_P is not offered), no CMCI, no poll-mode delivery of a UC error, no TDX.
 */
export function recordsUnsupported(records: string | undefined): string | undefined {
  if (!records) return undefined;
  let recs;
  try {
    recs = parseMce(records.replace(/\{[a-z]+:[^}]+\}/g, '0'));
  } catch {
    return undefined;
  }
  // QEMU raises each UC record's #MC at once. A second one on the same CPU finds MCG_STATUS.MCIP
  // still set (the guest has not run the first handler): QEMU turns it into a triple fault. One
  // at a time, the first #MC returns to user mode through its task_work (kill_me_maybe), so two
  // machine checks before that task_work ran cannot be arranged.
  const ucPerCpu = new Map<number, number>();
  for (const r of recs) if (r.status & (1n << 61n)) ucPerCpu.set(r.cpu, (ucPerCpu.get(r.cpu) ?? 0) + 1);
  if ([...ucPerCpu.values()].some((n) => n > 1)) return 'QEMU cannot raise a second machine check on a CPU before the first one\'s handler and task_work ran (MCIP still set: triple fault)';
  for (const r of recs) {
    if (r.mcgStatus & (1n << 3n)) return 'QEMU has no local machine checks (MCG_STATUS.LMCES; no MCG_CAP.LMCE_P)';
    if (r.mcgStatus & (1n << 12n)) return 'QEMU has no TDX: no SEAM non-root machine checks (MCG_STATUS.SEAM_NR)';
    const uc = (r.status & (1n << 61n)) !== 0n;
    if (uc && r.raise === 'poll') return 'QEMU has no CMCI and raises a #MC for every UC error: a UC record cannot be found by the poller';
  }
  return undefined;
}

export function buildProgram(c: LoadedCase, id: string): Program {
  const w = c.config.workload ?? {};
  const L: string[] = [`case ${id}`];
  const sys = c.config.machine?.sysctl ?? {};
  for (const [k, v] of Object.entries(sys)) if (v !== undefined) L.push(`sysctl ${k} ${v}`);
  const hp = c.config.machine?.hugepages?.['2M'];
  if (hp) L.push(`hugepages ${hp}`);
  for (const m of w.memcgs ?? []) L.push(`memcg ${m.name}`);
  const devices = new Map<string, string>([['sda', 'ext4']]);
  for (const d of w.devices ?? []) devices.set(d.name, d.fs);
  const filePath = new Map<string, string>();
  for (const f of w.files ?? []) {
    const fs = devices.get(f.device ?? 'sda') ?? 'ext4';
    const path = `${MOUNT[fs] ?? '/mnt/sda'}/${f.name}`;
    filePath.set(f.name, path);
    const pages = fs === 'hugetlbfs' ? Math.ceil(f.pages / 512) * 512 : f.pages;
    L.push(`file ${f.name} ${path} ${pages} ${list(f.holes, false)} ${list(f.cached, true)} ${list(f.dirty, false)} ${seedOf(f.name)}`);
  }
  const maps = new Map<string, Map<string, MapInfo>>();
  const processes: string[] = [];
  for (const p of w.processes ?? []) {
    processes.push(p.name);
    const pm = new Map<string, MapInfo>(p.parent ? maps.get(p.parent) : undefined);
    maps.set(p.name, pm);
    if (p.parent) {
      L.push(`step -1 1 10 - fork ${p.parent} ${p.name}`);
      // fork() copies the parent's comm and SIGBUS disposition; the case's own ones apply after it.
      L.push(`pcall ${p.name} main comm ${(p.comm ?? p.name).slice(0, 15)}`);
      if (p.sigbus) L.push(`pcall ${p.name} main sigbus ${p.sigbus}`);
      if (p['mce-kill']) L.push(`pcall ${p.name} main prctl 33 1 ${({ late: 0, early: 1, default: 2 })[p['mce-kill']]} 0 0`);
    } else {
      L.push(`proc ${p.name} ${p.sigbus ?? 'handler'} ${p['mce-kill'] ?? 'default'} ${p.comm ?? p.name} ${p.memcg ? `hwp-${p.memcg}` : '-'}`);
      for (const f of w.files ?? []) L.push(`pcall ${p.name} main open ${f.name} ${filePath.get(f.name)}`);
    }
    // A thread without a policy keeps the one it inherits from the main thread (as clone() does).
    for (const t of p.threads ?? []) L.push(`pcall ${p.name} main thread ${t.name} ${t['mce-kill'] ?? 'inherit'}`);
    for (const m of p.mappings ?? []) {
      const seed = seedOf(`${p.name}.${m.name}`);
      pm.set(m.name, { m, seed });
      const shared = m.shared ?? ['shmem', 'sysv-shm', 'memfd', 'hugetlbfs'].includes(m.kind);
      const path = m.file ? (filePath.get(m.file) ?? '-') : '-';
      // sysv-shm with huge: SHM_HUGETLB (hugetlb/hugetlbfs kinds are huge anyway).
      const flags = [m.thp ? 'thp' : '', m.mlock ? 'mlock' : '', m.huge && m.kind === 'sysv-shm' ? 'huge' : ''].filter(Boolean).join(',') || '-';
      L.push(`pcall ${p.name} main map ${m.name} ${m.kind} ${shared ? 1 : 0} ${path} ${m.offset ?? 0} ${m.pages} ${flags} ${m.populate ?? 'write'} ${seed}`);
    }
  }
  // Children forked by steps share their parent's mappings.
  for (const s of c.config.steps ?? []) {
    if (s.fork) {
      const parent = s.fork.process.split('.')[0] ?? '';
      maps.set(s.fork.child, new Map(maps.get(parent)));
      processes.push(s.fork.child);
    }
  }
  const refs = new Map<string, Ref>();
  for (const r of collectRefs(c)) {
    let line: string;
    const pm = PROC_PAGE.exec(r);
    const fm = FILE_PAGE.exec(r);
    if (r.startsWith('pfn:')) line = `ref ${r} pfn ${r.slice(4)}`;
    else if (r.startsWith('phys:')) line = `ref ${r} phys ${r.slice(5)}`;
    else if (r === 'zero') line = `ref ${r} zero`;
    else if (/^free/.test(r)) line = `ref ${r} free ${/\[(\d+)\]/.exec(r)?.[1] ?? 0}`;
    else if (fm) line = `ref ${r} file ${fm[1]} ${fm[2] ?? 0}`;
    else if (pm) {
      const info = maps.get(pm[1]!)?.get(pm[2]!);
      line = `ref ${r} proc ${pm[1]} ${pm[2]} ${pm[3] ?? 0} ${pm[4] ?? 0} ${info?.seed ?? 0}`;
    } else throw new Unsupported(`cannot resolve page reference ${r}`);
    refs.set(r, { name: r, line });
    L.push(line);
  }
  L.push('ready');
  const mce: McePlan[] = [];
  const steps = c.config.steps ?? [];
  for (const [i, s] of steps.entries()) {
    // The case-level `data` expectations are probed after the last step.
    const probes = Object.keys({ ...(s.expect?.data ?? {}), ...(i === steps.length - 1 ? (c.config.expect?.data ?? {}) : {}) });
    for (const line of stepLines(s, i, probes, devices, w.devices ?? [], mce, w.memcgs ?? [])) L.push(line);
  }
  L.push('end');
  return { text: `${L.join('\n')}\n`, refs, mce, processes };
}

function procThread(ref: string): [string, string] {
  const [p, t] = ref.split('.');
  return [p ?? ref, t ?? 'main'];
}

function stepLines(s: StepConfig, i: number, probes: string[], devices: Map<string, string>, declared: { name: string; major?: number; minor?: number; fs: string }[], mce: McePlan[], memcgs: { name: string; ino?: number }[] = []): string[] {
  const settle = s.mce || s.corrected ? 400 : 30;
  const head = (idx: number): string => `step ${idx} ${s.repeat ?? 1} ${settle} ${probes.length ? probes.join(',') : '-'}`;
  const one = (action: string): string[] => [`${head(i)} ${action}`];
  const refOrRaw = (v: string, kind: 'pfn' | 'phys'): string => {
    if (isPageRef(v)) return `${kind}@${v}`;
    if (/\s/.test(v) || v === '') throw new Unsupported(`raw value "${v}" cannot be written by the agent`);
    return v;
  };
  const dbg = '/sys/kernel/debug/hwpoison';
  if (s['corrupt-pfn'] !== undefined) return one(`write ${dbg}/corrupt-pfn ${refOrRaw(s['corrupt-pfn'], 'pfn')}`);
  if (s['unpoison-pfn'] !== undefined) return one(`write ${dbg}/unpoison-pfn ${refOrRaw(s['unpoison-pfn'], 'pfn')}`);
  if (s['hard-offline']) return one(`write /sys/devices/system/memory/hard_offline_page phys@${s['hard-offline']}`);
  if (s['soft-offline']) return one(`write /sys/devices/system/memory/soft_offline_page phys@${s['soft-offline']}`);
  if (s['hwpoison-filter']) {
    const f = s['hwpoison-filter'];
    const writes: string[] = [];
    const devFor = (key: 'major' | 'minor', v: number): string => {
      // -1 is the wildcard, ~0U in the u32 attribute (the kernel's reset value).
      if (v === -1) return '4294967295';
      const dflt = { name: 'sda', major: 8, minor: 0, fs: 'ext4' };
      for (const d of [dflt, ...declared]) if ((d[key] ?? (d.name === 'sda' ? dflt[key] : -1)) === v) return `${key}@${MOUNT[devices.get(d.name) ?? 'ext4']}`;
      return String(v);
    };
    if (f['dev-major'] !== undefined) writes.push(`write ${dbg}/corrupt-filter-dev-major ${devFor('major', f['dev-major'])}`);
    if (f['dev-minor'] !== undefined) writes.push(`write ${dbg}/corrupt-filter-dev-minor ${devFor('minor', f['dev-minor'])}`);
    if (f['flags-mask'] !== undefined) writes.push(`write ${dbg}/corrupt-filter-flags-mask ${f['flags-mask']}`);
    if (f['flags-value'] !== undefined) writes.push(`write ${dbg}/corrupt-filter-flags-value ${f['flags-value']}`);
    if (f.memcg !== undefined) {
      // A number names a declared memcg by the inode the case gave it (the real one differs).
      const byIno = typeof f.memcg === 'number' ? memcgs.find((m) => m.ino === f.memcg)?.name : f.memcg;
      writes.push(`write ${dbg}/corrupt-filter-memcg ${byIno !== undefined ? `ino@/sys/fs/cgroup/hwp-${byIno}` : f.memcg}`);
    }
    if (f.enable !== undefined) writes.push(`write ${dbg}/corrupt-filter-enable ${f.enable}`);
    return writes.map((wr, k) => `${head(k === writes.length - 1 ? i : -1)} ${wr}`);
  }
  if (s.sysctl) {
    const writes = Object.entries(s.sysctl).filter(([, v]) => v !== undefined).map(([k, v]) => `write /proc/sys/${k.replace(/\./g, '/')} ${v}`);
    return writes.map((wr, k) => `${head(k === writes.length - 1 ? i : -1)} ${wr}`);
  }
  if (s.madvise) {
    const [p, t] = procThread(s.madvise.process);
    const len = s.madvise.len ?? (s.madvise.pages ?? 1) * 4096;
    return one(`call ${p} ${t} madvise @${s.madvise.page} ${len} ${s.madvise.advice === 'hwpoison' ? 100 : 101}`);
  }
  if (s.access) {
    const [p, t] = procThread(s.access.process);
    return one(`call ${p} ${t} access @${s.access.page} ${s.access.op ?? 'read'}`);
  }
  if (s.read || s.write) {
    const r = (s.read ?? s.write)!;
    const [p, t] = procThread(r.process);
    return one(`call ${p} ${t} ${s.read ? 'pread' : 'pwrite'} ${r.file} ${r.page ?? 0} ${r.pages ?? 1} ${seedOf(r.file) + 1}`);
  }
  if (s.fsync) {
    const [p, t] = procThread(s.fsync.process);
    return one(`call ${p} ${t} fsync ${s.fsync.file}`);
  }
  if (s.msync || s.munmap) {
    const r = (s.msync ?? s.munmap)!;
    const [p, t] = procThread(r.process);
    const map = r.mapping.includes('.') ? r.mapping.split('.')[1] : r.mapping;
    return one(`call ${p} ${t} ${s.msync ? 'msync' : 'munmap'} ${map}`);
  }
  if (s.truncate) return one(`truncate ${s.truncate.file} ${s.truncate.pages}`);
  if (s.prctl) {
    const [p, t] = procThread(s.prctl.process);
    const opt = s.prctl.option === 'PR_MCE_KILL' ? 33 : 34;
    return one(`call ${p} ${t} prctl ${opt} ${s.prctl.arg2 ?? 0} ${s.prctl.arg3 ?? 0} ${s.prctl.arg4 ?? 0} ${s.prctl.arg5 ?? 0}`);
  }
  if (s.fork) return one(`fork ${procThread(s.fork.process)[0]} ${s.fork.child}`);
  if (s.exit) return one(`exit ${procThread(s.exit)[0]}`);
  if (s['drop-caches']) return one('write /proc/sys/vm/drop_caches 1');
  if (s.writeback) return one(`writeback ${s.writeback}`);
  if (s.wait !== undefined) {
    const sec = typeof s.wait === 'number' ? s.wait : parseFloat(s.wait);
    return one(`wait ${Math.round((Number.isFinite(sec) ? sec : 0) * 1000)}`);
  }
  if (s.mce) {
    const [p, t] = s.mce.process ? procThread(s.mce.process) : ['-', 'main'];
    mce.push({ step: i, ...(s.mce.records !== undefined ? { records: s.mce.records } : {}), ...(s.mce.page ? { page: s.mce.page } : {}), ...(s.mce.process ? { process: s.mce.process } : {}) });
    return one(`mce ${p} ${t} ${s.mce.page ?? '-'}`);
  }
  throw new Unsupported(`step ${i}: action ${Object.keys(s).filter((k) => k !== 'expect' && k !== 'as').join(',')} is not supported by the qemu target`);
}
