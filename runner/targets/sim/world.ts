// Building the simulated machine and workload from a case, and resolving the case's names
// (processes, threads, mappings, files, page references) to model objects.
import type { CaseConfig, Expectation, MappingConfig, ProcessConfig } from '../../case/schema.js';
import type { QueryAnswers } from '../target.js';
import type { Machine } from '../../../tsrc/hw/machine.js';
import { parseSize } from '../../case/size.js';
import { Kernel } from '../../../tsrc/kernel/kernel.js';
import { profileFor, DEFAULT_KERNEL } from '../../../tsrc/kernel/profiles.js';
import { mfTunables } from '../../../tsrc/kernel/mm/memory-failure.js';
import { Inode, type SuperBlock, type FsType } from '../../../tsrc/kernel/fs.js';
import { hstate } from '../../../tsrc/kernel/mm/hugetlb.js';
import type { Process, Task } from '../../../tsrc/kernel/sched.js';
import { PAGE_SIZE, type Vma } from '../../../tsrc/kernel/mm/mm.js';
import { PG } from '../../../tsrc/kernel/mm/page.js';
import { followPfn } from '../../../tsrc/kernel/mm/memory.js';
import { loadHwpoisonInject } from '../../../tsrc/kernel/mm/hwpoison-inject.js';
import { prctl, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, PR_MCE_KILL_LATE, PR_MCE_KILL_DEFAULT } from '../../../tsrc/kernel/kernel/sys.js';
import { makeLayout } from './layout.js';
import { setupExtensions } from './extensions.js';

export class SetupError extends Error {}

export interface ResolvedPage {
  ref: string;
  pfn?: number;
  /** Virtual address (process refs). */
  addr?: number;
  proc?: Process;
  vma?: Vma;
  inode?: Inode;
  index?: number;
}

export class World {
  readonly k: Kernel;
  readonly procs = new Map<string, Process>();
  readonly files = new Map<string, Inode>();
  readonly devices = new Map<string, SuperBlock>();
  /** Last data token the workload wrote to each page (by ref key), for data expectations. */
  readonly written = new Map<string, number>();
  /** Kernel pages the case named as kernel[N] / slab[N]. */
  private readonly kernelPages = new Map<string, number>();
  /** Per-process file descriptors. */
  private readonly fds = new Map<string, number>();
  private shmSb: SuperBlock;
  /** The simulated hardware (CPUs, MCA banks), built by mce-extensions.ts. */
  machine: Machine | undefined;
  /** Extension hooks that fill query answers (MCE records, soft-offlined pages) for an expectation block. */
  readonly answerHooks: ((e: Expectation, ans: QueryAnswers) => void)[] = [];
  /** Path of the case file, for files a step names relative to it. */
  caseFile: string | undefined;

  constructor(readonly cfg: CaseConfig, kernelOverride?: string) {
    const m = cfg.machine ?? {};
    const version = kernelOverride ?? m.kernel ?? DEFAULT_KERNEL;
    const profile = profileFor(version);
    if (!profile) throw new SetupError(`unknown kernel profile "${version}"`);
    const layout = makeLayout({
      memoryBytes: parseSize(m.memory ?? '4G'),
      nodes: m.nodes ?? 1,
      holes: (m.holes ?? []).map((h) => ({ start: parseSize(h.start), size: parseSize(h.size) })),
    });
    this.k = new Kernel({ profile, layout, panicMode: m.panic ?? 'stop', capSysAdmin: m.root ?? true, hwpoisonInjectLoaded: m['hwpoison-inject'] ?? true });
    if (m.model?.['mlocked-state']) mfTunables(this.k).mlockedState = m.model['mlocked-state'];
    if (m.model?.race) armRace(this.k, m.model.race);
    if (m['hwpoison-inject'] ?? true) loadHwpoisonInject(this.k);
    const sc = m.sysctl ?? {};
    for (const [name, value] of Object.entries(sc)) {
      if (value === undefined) continue;
      const r = this.k.writeSysctl(name, value);
      if (r) throw new SetupError(`sysctl ${name}=${value} is not accepted by kernel ${version}`);
    }
    this.shmSb = this.k.mountDevice('shm', 'tmpfs', 0, 1);
    setupExtensions(this);
    this.buildWorkload();
  }

  private device(name: string | undefined): SuperBlock {
    const n = name ?? 'sda';
    let sb = this.devices.get(n);
    if (!sb && n === 'sda') {
      sb = this.k.mountDevice('sda', 'ext4', 8, 0);
      this.devices.set('sda', sb);
    }
    if (!sb) throw new SetupError(`no device named "${n}"`);
    return sb;
  }

  private buildWorkload(): void {
    const w = this.cfg.workload ?? {};
    let nextMinor = 16;
    for (const d of w.devices ?? []) {
      const virtual = d.fs === 'tmpfs' || d.fs === 'ramfs' || d.fs === 'hugetlbfs';
      const sb = this.k.mountDevice(d.name, d.fs as FsType, d.major ?? (virtual ? 0 : 8), d.minor ?? (virtual ? nextMinor++ : 16 * this.devices.size));
      this.devices.set(d.name, sb);
    }
    let ino = 1000;
    for (const mg of w.memcgs ?? []) this.k.memcgs.set(mg.name, mg.ino ?? ino++);
    for (const f of w.files ?? []) {
      const sb = this.device(f.device);
      const inode = this.k.createFile(sb, f.name, f.pages);
      if (f.huge) inode.hugeShift = f.huge === '1G' ? 30 : 21;
      const holes = new Set(f.holes ?? []);
      const diskBacked = sb.fs !== 'tmpfs' && sb.fs !== 'ramfs' && sb.fs !== 'hugetlbfs';
      for (let i = 0; i < f.pages; i++) if (!holes.has(i) && diskBacked) inode.disk.set(i, this.k.newDataToken());
      const cached = f.cached === undefined || f.cached === true ? [...Array(f.pages).keys()] : f.cached === false ? [] : f.cached;
      if (sb.fs !== 'hugetlbfs') {
        for (const i of cached) if (!holes.has(i)) {
          const p = this.k.readPageCache(inode, i);
          if (!diskBacked) {
            p.data = this.k.newDataToken();
            p.set(PG.dirty);
            this.written.set(`file:${f.name}[${i}]`, p.data);
          }
        }
        const dirty = f.dirty === true ? [...Array(f.pages).keys()] : f.dirty === false || f.dirty === undefined ? [] : f.dirty;
        for (const i of dirty) {
          const p = this.k.readPageCache(inode, i);
          p.data = this.k.newDataToken();
          p.set(PG.dirty);
          this.written.set(`file:${f.name}[${i}]`, p.data);
        }
        for (const i of f.writeback ?? []) this.k.readPageCache(inode, i).set(PG.writeback);
      }
      this.files.set(f.name, inode);
    }
    for (const p of w.processes ?? []) this.buildProcess(p);
    this.k.returnToUser();
  }

  private buildProcess(pc: ProcessConfig): void {
    let proc: Process;
    const comm = pc.comm ?? pc.name.slice(0, 15);
    if (pc.parent) {
      const parent = this.procs.get(pc.parent)!;
      proc = this.k.fork(parent, pc.name);
      proc.comm = comm;
      proc.leader.comm = comm;
      for (const [key, v] of [...this.written]) {
        if (key.startsWith(`${pc.parent}.`)) this.written.set(`${pc.name}.${key.slice(pc.parent.length + 1)}`, v);
      }
      for (const [key, fd] of [...this.fds]) if (key.startsWith(`${pc.parent}/`)) this.fds.set(`${pc.name}/${key.slice(pc.parent.length + 1)}`, fd);
    } else {
      proc = this.k.createProcess(pc.name, comm, { sigbus: pc.sigbus ?? 'handler', ...(pc.memcg ? { memcg: pc.memcg } : {}), cpu: pc.cpu ?? 0 });
    }
    if (pc.sigbus) proc.sigbus = pc.sigbus;
    if (pc.memcg) proc.memcgIno = this.k.memcgs.get(pc.memcg) ?? 1;
    if (pc.cpu !== undefined) proc.leader.cpu = pc.cpu;
    this.procs.set(pc.name, proc);
    if (pc['mce-kill']) setPolicy(proc.leader, pc['mce-kill']);
    for (const t of pc.threads ?? []) {
      const task = this.k.createThread(proc, t.name);
      if (t.cpu !== undefined) task.cpu = t.cpu;
      if (t['mce-kill']) setPolicy(task, t['mce-kill']);
    }
    for (const m of pc.mappings ?? []) this.buildMapping(proc, pc.name, m);
  }

  private shmemInode(name: string, pages: number): Inode {
    return this.k.createFile(this.shmSb, name, pages);
  }

  private buildMapping(proc: Process, procName: string, m: MappingConfig): void {
    // SHM_HUGETLB segments and MFD_HUGETLB memfds live on the internal hugetlbfs mount.
    const hugeShm = m.huge !== undefined && (m.kind === 'sysv-shm' || m.kind === 'memfd') && !m.file;
    const ext = this.mappingBuilders.get(hugeShm ? 'shm-hugetlb' : m.kind);
    if (ext || m.thp || m.ksm) {
      const build = ext ?? this.mappingBuilders.get(m.thp ? 'thp' : 'ksm');
      if (!build) throw new SetupError(`mapping kind "${m.kind}${m.thp ? ' (thp)' : ''}" is not modelled yet`);
      build(proc, procName, m);
      return;
    }
    let vma: Vma;
    const locked = m.mlock ?? false;
    switch (m.kind) {
      case 'anon':
        if (m.shared) vma = this.k.mmap(proc, { pages: m.pages, shared: true, file: this.shmemInode(`anon-shared-${procName}-${m.name}`, m.pages), pgoff: 0, locked, name: m.name });
        else vma = this.k.mmap(proc, { pages: m.pages, shared: false, locked, name: m.name });
        break;
      case 'shmem':
      case 'memfd':
      case 'sysv-shm': {
        const inode = m.file ? this.files.get(m.file)! : this.shmemInode(`${m.kind}-${procName}-${m.name}`, m.pages);
        vma = this.k.mmap(proc, { pages: m.pages, shared: m.shared ?? true, file: inode, pgoff: m.offset ?? 0, locked, name: m.name });
        break;
      }
      case 'file': {
        const inode = this.files.get(m.file!)!;
        vma = this.k.mmap(proc, { pages: m.pages, shared: m.shared ?? false, file: inode, pgoff: m.offset ?? 0, locked, name: m.name });
        this.fdFor(procName, m.file!);
        break;
      }
      default:
        throw new SetupError(`mapping kind "${m.kind}" is not modelled yet`);
    }
    this.populate(proc, procName, m, vma);
  }

  /** Touches the pages of a new mapping as the case asks (MAP_POPULATE / memset / reads). */
  populate(proc: Process, procName: string, m: MappingConfig, vma: Vma): void {
    const how = m.populate ?? 'write';
    if (how !== 'none') {
      for (let i = 0; i < m.pages; i++) {
        const addr = vma.start + i * PAGE_SIZE;
        const r = this.k.access(proc.leader, addr, how === 'write');
        if (r.kind === 'ok' && how === 'write') this.written.set(`${procName}.${m.name}[${i}]`, r.data);
        else if (r.kind === 'ok') this.written.set(`${procName}.${m.name}[${i}]`, r.data);
      }
    }
    for (const i of m['swapped-out'] ?? []) this.swapOutAt(proc, vma.start + i * PAGE_SIZE, false);
    for (const i of m['swap-cache'] ?? []) {
      this.swapOutAt(proc, vma.start + i * PAGE_SIZE, false);
      this.k.access(proc.leader, vma.start + i * PAGE_SIZE, false);
    }
  }

  swapOutAt(proc: Process, addr: number, keepInCache: boolean): boolean {
    const pte = proc.mm?.pte(addr);
    if (pte?.kind !== 'present') return false;
    const page = this.k.alloc.pfnToPage(pte.pfn)!;
    return this.k.swap.swapOut(page, keepInCache);
  }

  /** Extension points: hugetlb, THP and KSM mapping builders register here (extensions.ts). */
  readonly mappingBuilders = new Map<string, (proc: Process, procName: string, m: MappingConfig) => void>();

  fdFor(procName: string, file: string): number {
    const key = `${procName}/${file}`;
    let fd = this.fds.get(key);
    if (fd === undefined) {
      fd = this.k.open(this.procs.get(procName)!, this.files.get(file)!);
      this.fds.set(key, fd);
    }
    return fd;
  }

  /** A task by "proc" or "proc.thread". */
  task(ref: string): Task {
    const [pname, tname] = ref.split('.');
    const proc = this.procs.get(pname ?? '');
    if (!proc) throw new SetupError(`no process named "${pname}"`);
    if (!tname || tname === 'main') return proc.leader;
    const t = proc.threads.find((x) => x.name === tname);
    if (!t) throw new SetupError(`process "${pname}" has no thread "${tname}"`);
    return t;
  }

  /** Resolves a page reference to what it names now. */
  resolve(ref: string): ResolvedPage {
    let m = /^pfn:(0x[0-9a-fA-F]+|\d+)$/.exec(ref);
    if (m) return { ref, pfn: Number(m[1]) };
    m = /^phys:(0x[0-9a-fA-F]+|\d+)$/.exec(ref);
    if (m) return { ref, pfn: Math.floor(Number(m[1]) / PAGE_SIZE) };
    m = /^free(?:\[(\d+)\])?$/.exec(ref);
    if (m) {
      const key = ref;
      let pfn = this.kernelPages.get(key);
      if (pfn === undefined) {
        pfn = this.k.alloc.peekFree(Number(m[1] ?? 0));
        this.kernelPages.set(key, pfn);
      }
      return { ref, pfn };
    }
    m = /^free-huge(?:\[(\d+)\])?$/.exec(ref);
    if (m) {
      // A raw page (the second base page) of the N-th free 2 MiB huge page, oldest first.
      const free = hstate(this.k, 21).freeList;
      const head = free[Number(m[1] ?? 0)];
      if (!head) throw new SetupError(`there is no free huge page ${m[1] ?? 0} in the 2M pool (machine.hugepages)`);
      return { ref, pfn: head.pfn + 1 };
    }
    if (ref === 'zero') return { ref, pfn: this.k.zeroPage.pfn };
    m = /^(kernel|slab)(?:\[(\d+)\])?$/.exec(ref);
    if (m) {
      const key = `${m[1]}[${m[2] ?? 0}]`;
      let pfn = this.kernelPages.get(key);
      if (pfn === undefined) {
        const p = this.k.alloc.alloc();
        p.kind = m[1] === 'slab' ? 'slab' : 'kernel';
        if (m[1] === 'slab') p.set(PG.slab);
        pfn = p.pfn;
        this.kernelPages.set(key, pfn);
      }
      return { ref, pfn };
    }
    m = /^file:([\w.-]+)(?:\[(\d+)\])?$/.exec(ref);
    if (m) {
      const inode = this.files.get(m[1]!);
      if (!inode) throw new SetupError(`no file named "${m[1]}"`);
      const index = Number(m[2] ?? 0);
      const page = inode.cache.get(index);
      return { ref, inode, index, ...(page ? { pfn: page.pfn } : {}) };
    }
    m = /^([\w-]+)\.([\w-]+)(?:\[(\d+)\])?(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(ref);
    if (m) {
      const proc = this.procs.get(m[1]!);
      if (!proc) throw new SetupError(`no process named "${m[1]}"`);
      const vma = proc.mm?.vmas.find((v) => v.name === m![2]);
      if (!vma) {
        if (!proc.alive) return { ref, proc };
        throw new SetupError(`process "${m[1]}" has no mapping "${m[2]}"`);
      }
      const addr = vma.start + Number(m[3] ?? 0) * PAGE_SIZE + Number(m[4] ?? 0);
      const pfn = followPfn(proc.mm!, addr);
      return { ref, proc, vma, addr, ...(pfn !== undefined ? { pfn } : {}) };
    }
    throw new SetupError(`cannot resolve page reference "${ref}"`);
  }

  /** The pfn a step acts on; faults the page in when the reference names an unpopulated page. */
  pfnOf(ref: string): number {
    const r = this.resolve(ref);
    if (r.pfn !== undefined) return r.pfn;
    if (r.inode && r.index !== undefined) return this.k.readPageCache(r.inode, r.index).pfn;
    if (r.proc && r.addr !== undefined) {
      const res = this.k.access(r.proc.leader, r.addr, false);
      if (res.kind === 'ok') return res.pfn;
    }
    throw new SetupError(`page "${ref}" has no page frame (not populated)`);
  }

  /** Name of a process for a pid, and of a thread for a tid. */
  namesOf(pid: number, tid: number): { proc: string; thread?: string } {
    const proc = this.k.processes.get(pid);
    const name = proc?.name ?? String(pid);
    const t = proc?.threads.find((x) => x.tid === tid);
    return t && t.name !== 'main' ? { proc: name, thread: t.name } : { proc: name };
  }
}

/** machine.model.race: makes one race of memory_failure() happen, once, at its point. */
function armRace(k: Kernel, race: 'lru-isolation' | 'allocated-before-take-off' | 'high-order-allocation' | 'concurrent-truncation'): void {
  const races = mfTunables(k).races;
  switch (race) {
    case 'lru-isolation':
      // isolate_lru_page() by reclaim just before memory_failure() locks the page.
      races.beforeLock = (p) => {
        races.beforeLock = undefined;
        p.clear(PG.lru);
      };
      break;
    case 'allocated-before-take-off':
      // The free page is handed out (as a kernel allocation) between the checks.
      races.beforeTakeOffBuddy = (p) => {
        races.beforeTakeOffBuddy = undefined;
        p.clear(PG.buddy);
        p.refcount = 1;
        p.kind = 'kernel';
      };
      break;
    case 'high-order-allocation':
      // The free page leaves the free lists as part of a higher-order allocation.
      races.afterGetFreePage = (p) => {
        races.afterGetFreePage = undefined;
        p.clear(PG.buddy);
      };
      break;
    case 'concurrent-truncation':
      // truncate_inode_pages() removes the file page after memory_failure() unmapped it.
      races.afterUnmap = (p) => {
        races.afterUnmap = undefined;
        const inode = p.mapping;
        if (inode instanceof Inode && inode.cache.get(p.index) === p) {
          inode.cache.delete(p.index);
          p.refcount--;
        }
        p.mapping = null;
      };
      break;
  }
}

function setPolicy(t: Task, policy: 'early' | 'late' | 'default'): void {
  const arg3 = policy === 'early' ? PR_MCE_KILL_EARLY : policy === 'late' ? PR_MCE_KILL_LATE : PR_MCE_KILL_DEFAULT;
  prctl(t, PR_MCE_KILL, PR_MCE_KILL_SET, arg3);
}
