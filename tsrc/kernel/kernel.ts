// The simulated kernel: global state plus a syscall-like API. It knows nothing of YAML, cases or
// reports; the runner's sim target drives it the way a workload drives a real kernel.
import { EACCES, EBADF, EINVAL, EIO, ENOENT, EPERM } from './errno.js';
import { Inode, type FsType, type SuperBlock } from './fs.js';
import { KernelLog } from './printk.js';
import type { KernelProfile } from './profiles.js';
import { Process, SIGBUS, SIGKILL, Task, type DeliveredSignal, type Disposition, type SigInfo } from './sched.js';
import { AnonVma, MM, PAGE_SIZE, VM_HUGETLB, VM_LOCKED, VM_SHARED, VM_WRITE, Vma } from './mm/mm.js';
import { handleAccess, pageCacheGet, type AccessResult } from './mm/memory.js';
import { filemapRead, filemapWrite, readFilePage } from './mm/filemap.js';
import { vfsFsync, writebackInode } from './mm/page-writeback.js';
import { dropPagecache, truncateInodePages } from './mm/truncate.js';
import { migratePage } from './mm/migrate.js';
import { KernelPanic } from './mm/memory-failure.js';
import { PageAllocator, type PhysLayout } from './mm/page_alloc.js';
import { PG, type Page } from './mm/page.js';
import { Swap } from './mm/swap.js';
import { hugetlbMeminfo } from './mm/hugetlb.js';
import { thpMeminfo } from './mm/huge_memory.js';

export interface TrailEvent {
  fn: string;
  msg: string;
  data?: Record<string, string | number | boolean>;
}

export interface MfStats {
  total: number;
  ignored: number;
  failed: number;
  delayed: number;
  recovered: number;
}

/** corrupt-filter-* (mm/hwpoison-inject.c). */
export interface HwpoisonFilter {
  enable: number;
  devMajor: number;
  devMinor: number;
  flagsMask: bigint;
  flagsValue: bigint;
  memcg: bigint;
}

export interface KernelOptions {
  profile: KernelProfile;
  layout: PhysLayout;
  panicMode?: 'stop' | 'fake';
  capSysAdmin?: boolean;
  hwpoisonInjectLoaded?: boolean;
}

export class Kernel {
  readonly profile: KernelProfile;
  readonly log = new KernelLog();
  readonly alloc: PageAllocator;
  readonly swap: Swap;
  readonly sysctl = { recovery: 1, earlyKill: 0, enableSoftOffline: 1 };
  readonly processes = new Map<number, Process>();
  readonly tasks = new Map<number, Task>();
  readonly inodes = new Map<number, Inode>();
  readonly superblocks = new Map<string, SuperBlock>();
  /** memcg name -> cgroup directory inode number. */
  readonly memcgs = new Map<string, number>();
  readonly filter: HwpoisonFilter = { enable: 0, devMajor: 0xffffffff, devMinor: 0xffffffff, flagsMask: 0n, flagsValue: 0n, memcg: 0n };
  /** hw_memory_failure: sticky; set by any memory_failure() without MF_SW_SIMULATED. */
  hwMemoryFailure = false;
  /** num_poisoned_pages (HardwareCorrupted). */
  numPoisonedPages = 0;
  /** The task on whose behalf the kernel runs (current). */
  current: Task | null = null;
  readonly zeroPage: Page;
  /** Every signal delivered (or left pending), in order. */
  readonly delivered: DeliveredSignal[] = [];
  readonly trailEvents: TrailEvent[] = [];
  readonly coverage = { errorStates: new Set<string>(), severities: new Set<string>() };
  panicked: string | undefined;
  panicMode: 'stop' | 'fake';
  capSysAdmin: boolean;
  hwpoisonInjectLoaded: boolean;
  /** Model time in seconds. */
  now = 0;
  /** Optional hugetlb fault handler (installed by hugetlb.ts). */
  hugetlbFault: ((task: Task, vma: Vma, addr: number, write: boolean) => AccessResult) | undefined;
  /** Optional hwpoison filter implementation (installed by hwpoison-inject.ts when loaded). */
  filterHook: ((page: Page) => boolean) | undefined;
  /** Observer of every signal generated (invariants.ts checks si_addr against the target's VMAs). */
  signalHook: ((task: Task, info: SigInfo, force: boolean) => void) | undefined;
  private readonly mfStatsByNode = new Map<number, MfStats>();
  private readonly mfQueues = new Map<number, { pfn: number; flags: number }[]>();
  private readonly work: (() => void)[] = [];
  private nextPid = 1000;
  private nextIno = 100;
  private dataToken = 1;

  constructor(opts: KernelOptions) {
    this.profile = opts.profile;
    this.alloc = new PageAllocator(opts.layout);
    this.swap = new Swap(this);
    this.panicMode = opts.panicMode ?? 'stop';
    this.capSysAdmin = opts.capSysAdmin ?? true;
    this.hwpoisonInjectLoaded = opts.hwpoisonInjectLoaded ?? true;
    // The shared zero page: a reserved kernel page (empty_zero_page), low in memory.
    const zp = this.alloc.pfnToPage(0x800) ?? this.alloc.alloc();
    zp.kind = 'zero';
    zp.flags = PG.reserved | PG.uptodate;
    zp.refcount = 1;
    this.zeroPage = zp;
    this.memcgs.set('/', 1);
  }

  // ---- bookkeeping used by the mm code ------------------------------------------------------

  /**
   * Whether decisions are recorded. The runner runs a case without the trail and, if it fails,
   * runs it again with it for the diagnostic (the model is deterministic); hot paths that build
   * a trail message per mapper test this first.
   */
  tracing = true;

  trail(fn: string, msg: string, data?: Record<string, string | number | boolean>): void {
    if (this.tracing) this.trailEvents.push(data ? { fn, msg, data } : { fn, msg });
  }

  newDataToken(): number {
    return ++this.dataToken;
  }

  mfStats(nid: number): MfStats {
    let s = this.mfStatsByNode.get(nid);
    if (!s) {
      s = { total: 0, ignored: 0, failed: 0, delayed: 0, recovered: 0 };
      this.mfStatsByNode.set(nid, s);
    }
    return s;
  }

  mfQueue(cpu: number): { pfn: number; flags: number }[] {
    let q = this.mfQueues.get(cpu);
    if (!q) {
      q = [];
      this.mfQueues.set(cpu, q);
    }
    return q;
  }

  scheduleWork(fn: () => void): void {
    this.work.push(fn);
  }

  /** Runs queued work items (workqueues run before the next step, or when time passes). */
  runWork(): void {
    while (this.work.length && !this.panicked) {
      const fn = this.work.shift()!;
      this.guard(fn);
    }
  }

  procOfMm(mm: MM): Process | undefined {
    return this.mmOwners.get(mm);
  }
  private readonly mmOwners = new Map<MM, Process>();

  /** panic(): stops the machine (or, with mce-test's fake_panic, only logs). */
  panic(msg: string): never {
    this.log.print('emerg', `Kernel panic - not syncing: ${msg}`);
    this.panicked = msg;
    throw new KernelPanic(msg);
  }

  /** Runs kernel code; a panic stops the machine instead of unwinding into the caller. */
  guard<T>(fn: () => T): T | undefined {
    if (this.panicked && this.panicMode === 'stop') return undefined;
    try {
      return fn();
    } catch (e) {
      if (e instanceof KernelPanic) return undefined;
      throw e;
    }
  }

  /** A syscall by `task`: runs with current = task, then returns to user (signals delivered). */
  syscall<T>(task: Task | null, fn: () => T, fallback: T): T {
    if (this.panicked && this.panicMode === 'stop') return fallback;
    const prev = this.current;
    this.current = task;
    let ret: T | undefined;
    try {
      ret = this.guard(fn);
    } finally {
      this.current = prev;
    }
    this.returnToUser();
    return ret === undefined ? fallback : ret;
  }

  // ---- signals ------------------------------------------------------------------------------

  /** Queues a signal for a task; a non-RT signal already pending is coalesced (dropped). */
  sendSignal(task: Task, info: SigInfo, force: boolean): void {
    const proc = task.group;
    if (!proc.alive) return;
    this.signalHook?.(task, info, force);
    const pendingSame = task.pending.find((p) => p.info.signo === info.signo);
    if (pendingSame) {
      // force_sig_info_to_task() unblocks / resets SIG_IGN before the (coalesced) send.
      if (force) pendingSame.force = true;
      this.trail('send_signal', `signal ${info.signo} to ${task.comm}:${task.tid} coalesced with a pending one`);
      return;
    }
    // A non-forced signal to an ignoring process is discarded at generation time.
    if (!force && info.signo === SIGBUS && proc.sigbus === 'ignore') {
      this.trail('send_signal', `SIGBUS to ${task.comm}:${task.tid} discarded (SIG_IGN)`);
      return;
    }
    task.pending.push({ info, force });
    this.signalPending.add(task);
  }

  /** force_sig_mceerr(): AR to the current thread: unblocks SIGBUS and resets SIG_IGN. */
  forceSigMceerr(task: Task, code: number, addr: number, lsb: number): void {
    this.sendSignal(task, { signo: SIGBUS, code, addr, lsb }, true);
  }

  /** send_sig_mceerr(): an ordinary thread-directed AO signal. */
  sendSigMceerr(task: Task, code: number, addr: number, lsb: number): void {
    this.sendSignal(task, { signo: SIGBUS, code, addr, lsb }, false);
  }

  forceSig(task: Task, info: SigInfo): void {
    this.sendSignal(task, info, true);
  }

  /** Tasks with queued signals (sendSignal adds, returnToUser drops): delivery visits only these. */
  private readonly signalPending = new Set<Task>();

  /** Delivers pending signals of every task (the tasks return to user mode). */
  returnToUser(): void {
    if (this.signalPending.size === 0) return;
    // for_each_process order: processes by pid (creation order), threads by tid (creation order).
    const tasks = [...this.signalPending].sort((a, b) => a.group.pid - b.group.pid || a.tid - b.tid);
    for (const t of tasks) {
      const proc = t.group;
      {
        while (t.pending.length && proc.alive) {
          const { info, force } = t.pending[0]!;
          let disp: Disposition = info.signo === SIGBUS ? proc.sigbus : 'default';
          if (info.signo === SIGKILL) disp = 'default';
          if (force && (disp === 'ignore' || disp === 'block')) disp = 'default';
          if (disp === 'block') {
            // Stays pending until unblocked: the workload never unblocks it.
            this.recordSignal(t, info, false, true);
            break;
          }
          t.pending.shift();
          if (disp === 'ignore') continue;
          if (disp === 'handler') {
            proc.received.push(info);
            this.recordSignal(t, info, false);
          } else {
            this.recordSignal(t, info, true);
            this.exitProcess(proc, info.signo);
          }
        }
      }
      // A blocked signal stays queued (and is recorded again at the next return to user).
      if (!t.pending.length || !proc.alive) this.signalPending.delete(t);
    }
  }

  private recordSignal(t: Task, info: SigInfo, fatal: boolean, pending = false): void {
    const last = this.delivered[this.delivered.length - 1];
    if (pending && last?.pending && last.tid === t.tid && last.signo === info.signo) return;
    this.delivered.push({ ...info, pid: t.group.pid, tid: t.tid, fatal, ...(pending ? { pending: true } : {}) });
  }

  // ---- processes ------------------------------------------------------------------------------

  /** Creates a process (fork of init + exec): a fresh mm and one thread. */
  createProcess(name: string, comm: string, opts: { sigbus?: Disposition; memcg?: string; cpu?: number } = {}): Process {
    const pid = this.nextPid++;
    const mm = new MM();
    const proc = new Process(pid, comm, mm, null, name);
    proc.sigbus = opts.sigbus ?? 'handler';
    proc.memcgIno = opts.memcg ? (this.memcgs.get(opts.memcg) ?? 1) : 1;
    const t = new Task(pid, comm, proc, 'main');
    t.cpu = opts.cpu ?? 0;
    proc.threads.push(t);
    this.processes.set(pid, proc);
    this.tasks.set(pid, t);
    this.mmOwners.set(mm, proc);
    return proc;
  }

  /** clone(CLONE_THREAD): a new thread inherits the creator's PF_MCE_* flags. */
  createThread(proc: Process, name: string, from: Task = proc.leader): Task {
    const tid = this.nextPid++;
    const t = new Task(tid, proc.comm, proc, name);
    t.flags = from.flags;
    t.cpu = from.cpu;
    proc.threads.push(t);
    this.tasks.set(tid, t);
    return t;
  }

  /** fork(): private mappings become copy-on-write, shared ones stay shared. */
  fork(parent: Process, name: string): Process {
    const pid = this.nextPid++;
    const mm = new MM();
    mm.mmapBase = parent.mm!.mmapBase;
    const child = new Process(pid, parent.comm, mm, parent, name);
    child.sigbus = parent.sigbus;
    child.memcgIno = parent.memcgIno;
    const t = new Task(pid, parent.comm, child, 'main');
    t.flags = parent.leader.flags;
    t.cpu = parent.leader.cpu;
    child.threads.push(t);
    this.processes.set(pid, child);
    this.tasks.set(pid, t);
    this.mmOwners.set(mm, child);
    for (const v of parent.mm!.vmas) {
      const nv = new Vma(mm, v.start, v.end, v.flags, v.pgoff, v.file, v.anonVma, v.name, v.pageShift);
      mm.vmas.push(nv);
      if (v.anonVma) v.anonVma.vmas.add(nv);
      if (v.file) v.file.mmap.add(nv);
      // copy_page_range(): copy ptes; private writable ones become read-only (COW). Shared
      // mappings without an anon_vma are not copied: the child faults them in (§23.3.9).
      if (!v.anonVma && !v.has(VM_HUGETLB)) continue;
      for (const addr of parent.mm!.entriesIn(v.start, v.end)) {
        const pte = parent.mm!.pte(addr);
        if (!pte) continue;
        if (pte.kind === 'present') {
          const page = this.alloc.pfnToPage(pte.pfn)!;
          const shared = v.has(VM_SHARED);
          if (!shared) pte.writable = false;
          mm.setPte(addr, { kind: 'present', pfn: pte.pfn, dirty: pte.dirty, writable: shared && pte.writable });
          page.mapcount++;
          page.folio().refcount++;
          page.folio().clear(PG.anonExclusive);
        } else {
          mm.setPte(addr, { ...pte });
        }
      }
    }
    return child;
  }

  /** do_exit(): tear down the address space, close files. */
  exitProcess(proc: Process, signo?: number): void {
    if (!proc.alive) return;
    proc.alive = false;
    proc.killedBy = signo;
    const mm = proc.mm;
    if (mm) {
      for (const v of [...mm.vmas]) this.unmapVma(v);
      mm.users = 0;
      this.mmOwners.delete(mm);
    }
    proc.mm = null;
    for (const t of proc.threads) t.pending = [];
    this.trail('do_exit', `${proc.comm}:${proc.pid} exited${signo ? ` (signal ${signo})` : ''}`);
  }

  // ---- mappings -------------------------------------------------------------------------------

  /** mmap(): returns the address. Kind-specific backing objects are prepared by the caller. */
  mmap(proc: Process, opts: { pages: number; shared: boolean; file?: Inode; pgoff?: number; locked?: boolean; name: string; pageShift?: number; align?: number }): Vma {
    const mm = proc.mm!;
    const len = opts.pages * PAGE_SIZE;
    const align = opts.align ?? PAGE_SIZE;
    const start = Math.ceil(mm.mmapBase / align) * align;
    mm.mmapBase = start + len + 16 * PAGE_SIZE;
    let flags = VM_WRITE;
    if (opts.shared) flags |= VM_SHARED;
    if (opts.locked) flags |= VM_LOCKED;
    if ((opts.pageShift ?? 12) > 12) flags |= VM_HUGETLB;
    const anonVma = opts.file && opts.shared ? null : new AnonVma();
    const pgoff = opts.file ? (opts.pgoff ?? 0) : Math.floor(start / PAGE_SIZE);
    const vma = new Vma(mm, start, start + len, flags, pgoff, opts.file ?? null, anonVma, opts.name, opts.pageShift ?? 12);
    anonVma?.vmas.add(vma);
    opts.file?.mmap.add(vma);
    mm.vmas.push(vma);
    return vma;
  }

  /** zap_page_range over a whole VMA, then remove it (munmap). */
  unmapVma(v: Vma): void {
    const mm = v.mm;
    for (const addr of mm.entriesIn(v.start, v.end)) {
      const pte = mm.pte(addr);
      if (!pte) continue;
      mm.setPte(addr, undefined);
      if (pte.kind !== 'present') continue;
      const page = this.alloc.pfnToPage(pte.pfn)!;
      if (pte.dirty && (page.kind === 'file' || page.kind === 'shmem')) page.set(PG.dirty);
      page.mapcount--;
      if (v.has(VM_LOCKED) && page.mapcount === 0) page.clear(PG.mlocked | PG.unevictable);
      if (page.kind === 'anon' && page.mapcount === 0 && page.test(PG.swapcache)) this.swap.deleteFromSwapCache(page);
      this.alloc.put(page);
    }
    v.anonVma?.vmas.delete(v);
    v.file?.mmap.delete(v);
    if (v.file?.mmap.size === 0) v.file.onLastUnmap?.(v.file);
    const i = mm.vmas.indexOf(v);
    if (i >= 0) mm.vmas.splice(i, 1);
  }

  /** A load or store by a task (the page fault path when needed). */
  access(task: Task, addr: number, write: boolean): AccessResult {
    return this.syscall(task, () => handleAccess(this, task, addr, write), { kind: 'segv', addr } as AccessResult);
  }

  // ---- files ----------------------------------------------------------------------------------

  mountDevice(name: string, fs: FsType, major: number, minor: number): SuperBlock {
    const sb: SuperBlock = { name, fs, major, minor };
    this.superblocks.set(name, sb);
    return sb;
  }

  createFile(sb: SuperBlock, name: string, pages: number): Inode {
    const inode = new Inode(this.nextIno++, sb, pages, name);
    if (sb.fs === 'ramfs') inode.unevictable = true;
    this.inodes.set(inode.ino, inode);
    return inode;
  }

  open(proc: Process, inode: Inode): number {
    const fd = proc.nextFd++;
    // A new open samples wb_err; an error nobody has seen yet is still reported to it.
    proc.files.set(fd, { inodeIno: inode.ino, wbErrSeen: inode.wbErrSeen ? inode.wbErr : inode.wbErr - 1 });
    return fd;
  }

  private fileOf(proc: Process, fd: number): Inode | undefined {
    const f = proc.files.get(fd);
    return f ? this.inodes.get(f.inodeIno) : undefined;
  }

  /** pread(): returns bytes read or -errno (mm/filemap.ts). */
  pread(task: Task, fd: number, page: number, pages: number): number {
    return this.syscall(
      task,
      () => {
        const inode = this.fileOf(task.group, fd);
        return inode ? filemapRead(this, inode, page, pages) : -EBADF;
      },
      -EIO,
    );
  }

  /** What reading one page of a file returns: the data token, or an errno. */
  readFilePage(inode: Inode, index: number): { data: number } | { err: number } {
    return readFilePage(this, inode, index);
  }

  /** The page-cache page of a file index, read in from disk if absent (filemap_read_folio). */
  readPageCache(inode: Inode, index: number): Page {
    return pageCacheGet(this, inode, index);
  }


  /** pwrite() of whole pages (mm/filemap.ts). */
  pwrite(task: Task, fd: number, page: number, pages: number): number {
    return this.syscall(
      task,
      () => {
        const inode = this.fileOf(task.group, fd);
        return inode ? filemapWrite(this, inode, page, pages) : -EBADF;
      },
      -EIO,
    );
  }

  /** fsync(): writes back dirty pages and reports a writeback error once per open file (mm/page-writeback.ts). */
  fsync(task: Task, fd: number): number {
    return this.syscall(
      task,
      () => {
        const f = task.group.files.get(fd);
        const inode = f ? this.inodes.get(f.inodeIno) : undefined;
        return f && inode ? vfsFsync(this, f, inode) : -EBADF;
      },
      -EIO,
    );
  }

  /** Writeback of a file's dirty pages. */
  writeback(inode: Inode): void {
    writebackInode(inode);
  }

  /** ftruncate() (mm/truncate.ts). */
  truncate(inode: Inode, pages: number): number {
    return this.syscall(null, () => (truncateInodePages(this, inode, pages), 0), -EIO);
  }

  /** echo 1 > /proc/sys/vm/drop_caches. */
  dropCaches(): void {
    this.syscall(null, () => dropPagecache(this), undefined);
  }

  /** migrate_pages() of one page (mm/migrate.ts). */
  migratePage(old: Page): number {
    return migratePage(this, old);
  }

  /** hwpoison_filter(): true when the registered filter rejects the page. */
  hwpoisonFilter(page: Page, _inMemoryFailure: boolean): boolean {
    if (!this.filterHook || !this.hwpoisonInjectLoaded) return false;
    return this.filterHook(page);
  }

  /** CAP_SYS_ADMIN check for privileged interfaces. */
  capable(): boolean {
    return this.capSysAdmin;
  }

  /** /proc/meminfo fields in kB. */
  meminfo(): Record<string, number> {
    return { HardwareCorrupted: this.numPoisonedPages * 4, ...hugetlbMeminfo(this), ...thpMeminfo(this) };
  }

  /** /proc/sys/vm writes: returns 0 or -EINVAL. */
  writeSysctl(name: string, value: number): number {
    switch (name) {
      case 'vm.memory_failure_recovery':
        if (value < 0 || value > 1) return -EINVAL;
        this.sysctl.recovery = value;
        return 0;
      case 'vm.memory_failure_early_kill':
        if (value < 0 || value > 1) return -EINVAL;
        this.sysctl.earlyKill = value;
        return 0;
      case 'vm.enable_soft_offline': {
        const max = this.profile.enableSoftOfflineMax;
        if (max === undefined) return -ENOENT;
        if (value < 0 || value > max) return -EINVAL;
        this.sysctl.enableSoftOffline = value;
        return 0;
      }
      default:
        return -ENOENT;
    }
  }

  /** Permission to open a root-only debugfs/sysfs file. */
  openPrivileged(): number {
    return this.capSysAdmin ? 0 : -EACCES;
  }

  requireCap(): number {
    return this.capSysAdmin ? 0 : -EPERM;
  }

  static readonly VM_HUGETLB = VM_HUGETLB;
}
