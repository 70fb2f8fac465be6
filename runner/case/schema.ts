// The hwpsim case format: one self-contained YAML file per case.
//
// This zod schema is the single source of truth: the loader validates with it, `hwpsim schema`
// emits it as JSON Schema for editors, and test/case/docs.test.ts checks that docs/case-format.md
// documents every key it declares.
import { z } from 'zod';

/** A size such as 4096, "4K", "64G", "4T". */
export const Size = z
  .union([z.number().int().nonnegative(), z.string().regex(/^\s*\d+(\.\d+)?\s*([KMGTP]i?B?|B)?\s*$/i, 'a size such as 4096, "4K", "2M", "64G" or "4T"')])
  .describe('A size in bytes: a number, or a string with a K/M/G/T suffix (powers of 1024).');

/**
 * A page reference: `proc.mapping[N]` (page N of a mapping of a process), `file:NAME[N]` (page N of
 * a file's page cache), `pfn:0x1234`, `phys:0x1234000`, `free[N]` (the N-th free page the model
 * would hand out next), `zero` (the shared zero page), `kernel[N]` (a kernel-owned slab page).
 */
export const PageRef = z
  .string()
  .regex(
    /^(?:[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*(?:\[\d+\])?(?:\+0x[0-9a-fA-F]+|\+\d+)?|file:[A-Za-z_][\w.-]*(?:\[\d+\])?|pfn:(?:0x[0-9a-fA-F]+|\d+)|phys:(?:0x[0-9a-fA-F]+|\d+)|free(?:\[\d+\])?|free-huge(?:\[\d+\])?|zero|kernel(?:\[\d+\])?|slab(?:\[\d+\])?)$/,
    'a page reference such as victim.buf[3], file:data[2], pfn:0x1234, phys:0x1234000, free[0], free-huge[0], zero or kernel[0]',
  )
  .describe('A page: proc.mapping[N] (optionally +offset), file:NAME[N], pfn:N, phys:ADDR, free[N], free-huge[N] (a raw page of the N-th free huge page of the 2M pool), zero, kernel[N].');

const Name = z.string().regex(/^[A-Za-z_][\w-]*$/, 'a name made of letters, digits, _ and - (starting with a letter or _)');

export const KernelProfileName = z.string().regex(/^\d+\.\d+$/, 'a kernel version such as "6.1", "6.12" or "6.18"').describe('Kernel version profile.');

const Sysctls = z
  .object({
    'vm.memory_failure_recovery': z.number().int().min(0).max(1).optional().describe('0 panics on every memory_failure() call. Default 1.'),
    'vm.memory_failure_early_kill': z.number().int().min(0).max(1).optional().describe('1 sends BUS_MCEERR_AO to mapping processes at handling time. Default 0.'),
    'vm.enable_soft_offline': z.number().int().min(0).max(3).optional().describe('0 disables soft offline (EOPNOTSUPP); 3 skips hugetlb (kernels >= 6.18). Default 1.'),
  })
  .strict()
  .describe('Sysctls under /proc/sys/vm.');

export const McaConfig = z
  .object({
    banks: z.number().int().min(1).max(32).optional().describe('Number of MCA banks per CPU (MCG_CAP.Count). Default 10.'),
    ser: z.boolean().optional().describe('Software error recovery support (MCG_CAP.SER_P). Default true.'),
    cmci: z.boolean().optional().describe('Corrected machine check interrupts (MCG_CAP.CMCI_P). Default true.'),
    lmce: z.boolean().optional().describe('Local machine check exceptions (MCG_CAP.LMCE_P). Default true.'),
    'shared-banks': z.array(z.number().int().min(0)).optional().describe('Banks shared by all CPUs of a socket (the memory controller). Default [7, 8].'),
    'monarch-timeout-us': z.number().int().min(0).optional().describe('Rendezvous timeout in microseconds. Default 1000000.'),
    tolerant: z.number().int().min(0).max(3).optional().describe('x86 tolerant level (kernels before 5.18 only). Default 1.'),
  })
  .strict()
  .describe('The machine-check architecture.');

export const MachineConfig = z
  .object({
    kernel: KernelProfileName.optional().describe('Kernel version profile the model follows. Default "6.12".'),
    cpus: z.number().int().min(1).max(4096).optional().describe('Logical CPUs in total. Default 2.'),
    sockets: z.number().int().min(1).max(64).optional().describe('CPU sockets. Default 1.'),
    'offline-cpus': z.array(z.number().int().min(0)).optional().describe('CPUs that are offline.'),
    memory: Size.optional().describe('Physical memory size. Default 4G.'),
    nodes: z.number().int().min(1).max(64).optional().describe('NUMA nodes (memory split evenly). Default 1.'),
    holes: z.array(z.object({ start: Size, size: Size }).strict()).optional().describe('Physical address ranges that are not RAM.'),
    mca: McaConfig.optional(),
    sysctl: Sysctls.optional(),
    panic: z.enum(['stop', 'fake']).optional().describe('"stop": a panic stops the machine (the case can expect it); "fake": mce-test fake_panic, log and continue. Default "stop".'),
    hugepages: z.object({ '2M': z.number().int().min(0).optional(), '1G': z.number().int().min(0).optional() }).strict().optional().describe('Size of the hugetlb pools.'),
    swap: Size.optional().describe('Swap space size. Default 1G.'),
    model: z
      .object({
        'mlocked-state': z.enum(['munlocked', 'unevictable', 'batched']).optional(),
        race: z
          .enum(['lru-isolation', 'allocated-before-take-off', 'high-order-allocation', 'concurrent-truncation'])
          .optional()
          .describe('Make one race of memory_failure() happen once, at its point (§3.2, §3.3, §21.3, §21.29).'),
      })
      .strict()
      .optional()
      .describe(
        'Model knobs that are not kernel-version switches (sim only; kernel-model.md §22). race: "lru-isolation" (reclaim isolates the page from the LRU just before classification: `unknown page`), "allocated-before-take-off" (a free page is allocated between the buddy check and take_page_off_buddy(): the retry as an in-use page), "high-order-allocation" (the free page leaves the free lists in a higher-order allocation: `high-order kernel page: Ignored`), "concurrent-truncation" (the file page is truncated after it was unmapped: `already truncated LRU page: Ignored`). mlocked-state: where munlock left an mlocked page when identify_page_state() runs: "munlocked" (default, what 6.1/6.12 show: back on the evictable LRU, `dirty/clean LRU page`), "unevictable" (still on the unevictable LRU, `… unevictable LRU page`), "batched" (off the LRU in the mlock batch: the snapshot pass picks `… mlocked LRU page`).',
      ),
    cec: z.object({ enabled: z.boolean().optional(), threshold: z.number().int().min(1).optional() }).strict().optional().describe('Kernel RAS CEC (drivers/ras/cec.c). Default: off; threshold 1023.'),
    'page-threshold': z
      .object({ count: z.number().int().min(1), period: z.number().int().min(1).optional() })
      .strict()
      .optional()
      .describe('mcelog/rasdaemon per-page corrected-error threshold: soft-offline a page after COUNT errors within PERIOD seconds.'),
    'hwpoison-inject': z.boolean().optional().describe('Whether the hwpoison_inject module is loaded. Default true.'),
    root: z.boolean().optional().describe('Whether the workload runs with CAP_SYS_ADMIN. Default true.'),
  })
  .strict()
  .describe('The machine the case runs on.');

export const DeviceConfig = z
  .object({
    name: Name,
    major: z.number().int().min(0).max(4095).optional(),
    minor: z.number().int().min(0).max(1048575).optional(),
    fs: z.enum(['ext4', 'xfs', 'btrfs', 'tmpfs', 'ramfs', 'hugetlbfs', 'bdev']).describe('Filesystem on the device.'),
  })
  .strict();

export const FileConfig = z
  .object({
    name: Name,
    device: Name.optional().describe('Device holding the file. Default: an ext4 device sda (8:0).'),
    pages: z.number().int().min(0).max(1 << 24).describe('File size in pages.'),
    cached: z.union([z.boolean(), z.array(z.number().int().min(0))]).optional().describe('Pages in the page cache (true = all). Default true.'),
    dirty: z.union([z.boolean(), z.array(z.number().int().min(0))]).optional().describe('Dirty page-cache pages (true = all). Default none.'),
    holes: z.array(z.number().int().min(0)).optional().describe('Pages that are holes (never written).'),
    writeback: z.array(z.number().int().min(0)).optional().describe('Pages under writeback.'),
    huge: z.enum(['2M', '1G']).optional().describe('Huge page size of a hugetlbfs file.'),
  })
  .strict();

export const MemcgConfig = z
  .object({ name: Name, ino: z.number().int().min(1).optional().describe('cgroup directory inode number. Default assigned.') })
  .strict();

const McePolicy = z.enum(['early', 'late', 'default']).describe('prctl(PR_MCE_KILL) policy of a thread.');
const SigbusDisposition = z.enum(['default', 'handler', 'ignore', 'block']).describe('SIGBUS disposition.');

export const MappingConfig = z
  .object({
    name: Name,
    kind: z.enum(['anon', 'file', 'shmem', 'sysv-shm', 'memfd', 'hugetlb', 'hugetlbfs']).describe('What backs the mapping.'),
    shared: z.boolean().optional().describe('MAP_SHARED (true) or MAP_PRIVATE (false). Default: false for anon/file, true for shmem kinds.'),
    file: Name.optional().describe('The file mapped (kind file / hugetlbfs / shmem on a tmpfs file).'),
    offset: z.number().int().min(0).optional().describe('First file page mapped.'),
    pages: z.number().int().min(1).max(1 << 22).describe('Length in base pages (4 KiB).'),
    huge: z.enum(['2M', '1G']).optional().describe('Huge page size for hugetlb mappings. Default 2M.'),
    thp: z.boolean().optional().describe('madvise(MADV_HUGEPAGE): fault in 2 MiB transparent huge pages.'),
    ksm: z.string().optional().describe('KSM-merge this mapping with the named mapping (proc.mapping) of identical contents.'),
    populate: z.enum(['none', 'read', 'write']).optional().describe('How the pages are touched after mmap. Default write.'),
    mlock: z.boolean().optional().describe('mlock() the mapping.'),
    'swapped-out': z.array(z.number().int().min(0)).optional().describe('Pages swapped out after populating.'),
    'swap-cache': z.array(z.number().int().min(0)).optional().describe('Pages left in the swap cache after a swap-in (clean swap-cache pages).'),
  })
  .strict();

export const ThreadConfig = z.object({ name: Name, 'mce-kill': McePolicy.optional(), cpu: z.number().int().min(0).optional() }).strict();

export const ProcessConfig = z
  .object({
    name: Name,
    comm: z.string().min(1).max(15).optional().describe('Task comm (max 15 characters). Default: the name.'),
    parent: Name.optional().describe('Create this process by fork() of the named process (after its mappings exist).'),
    memcg: Name.optional(),
    sigbus: SigbusDisposition.optional().describe('Default "handler" (the process records each SIGBUS and lives).'),
    'mce-kill': McePolicy.optional().describe('prctl(PR_MCE_KILL) policy of the main thread.'),
    threads: z.array(ThreadConfig).optional().describe('Extra threads, in creation order.'),
    cpu: z.number().int().min(0).optional().describe('CPU the main thread runs on. Default 0.'),
    mappings: z.array(MappingConfig).optional(),
  })
  .strict();

export const Workload = z
  .object({
    devices: z.array(DeviceConfig).optional(),
    files: z.array(FileConfig).optional(),
    memcgs: z.array(MemcgConfig).optional(),
    processes: z.array(ProcessConfig).optional(),
  })
  .strict()
  .describe('What runs on the machine before the steps.');

// ---- expectations --------------------------------------------------------------------------

const SignalName = z.enum(['SIGBUS', 'SIGKILL', 'SIGSEGV']);
const SiCode = z.enum(['BUS_MCEERR_AR', 'BUS_MCEERR_AO', 'BUS_ADRERR', 'BUS_OBJERR', 'SI_KERNEL', 'SI_USER', 'SEGV_MAPERR']);

export const SignalExpectation = z
  .object({
    to: z.string().describe('Process name, or process.thread.'),
    signo: SignalName.optional().describe('Default SIGBUS.'),
    code: SiCode.optional(),
    addr: z.union([PageRef, z.literal('none')]).optional().describe('Expected si_addr as a page reference (page-aligned unless it has +offset).'),
    lsb: z.number().int().min(0).max(63).optional().describe('Expected si_addr_lsb (12, 21 or 30).'),
    count: z.number().int().min(1).optional().describe('How many such signals. Default 1.'),
  })
  .strict();

const LogPattern = z.string().describe('An exact kernel log line, or /regex/. Templates: {pfn}, {pfn:REF}, {addr:REF}, {phys:REF}, {pid:PROC}, {tid:PROC.THREAD}, {comm:PROC}.');

const Errno = z.string().regex(/^E[A-Z0-9]+$/, 'an errno name such as EBUSY');

export const Expectation = z
  .object({
    ret: z.union([z.number().int(), z.literal('ok')]).optional().describe('Return value of the step (0, a count, or a negative errno).'),
    errno: z.union([Errno, z.literal(0)]).optional().describe('errno of the step (EBUSY, EHWPOISON, EIO ...), or 0 for success.'),
    log: z.array(LogPattern).optional().describe('Kernel log lines that must appear, in this order (other lines may come between).'),
    'log-exact': z.array(LogPattern).optional().describe('The exact list of kernel log lines (all of them, in order).'),
    'log-not': z.array(LogPattern).optional().describe('Kernel log lines that must not appear.'),
    signals: z.array(SignalExpectation).optional().describe('Exactly the signals delivered (during the step, or over the whole case at the end).'),
    killed: z.array(z.string()).optional().describe('Processes that must have been killed (with the signal, e.g. victim:SIGBUS).'),
    alive: z.array(z.string()).optional().describe('Processes that must still be alive.'),
    meminfo: z.record(z.string(), z.number().int()).optional().describe('/proc/meminfo values in kB (HardwareCorrupted, HugePages_Total, HugePages_Free ...).'),
    'mf-stats': z.record(z.string(), z.record(z.string(), z.number().int())).optional().describe('Per-node memory_failure statistics, e.g. {node0: {total: 1, recovered: 1}}.'),
    kpageflags: z
      .record(PageRef, z.object({ set: z.array(z.string()).optional(), clear: z.array(z.string()).optional() }).strict())
      .optional()
      .describe('KPF_* bits that must be set / clear on a page (names like hwpoison, lru, dirty, buddy).'),
    data: z.record(PageRef, z.enum(['intact', 'lost', 'zero', 'old'])).optional().describe('What a later read of the page returns: its data intact, lost (SIGBUS/EIO), zero-filled, or the old on-disk data.'),
    panic: z.union([z.boolean(), z.string()]).optional().describe('Whether the kernel panicked (or the panic message).'),
    severity: z.string().optional().describe('The MCE severity grade (e.g. MCE_AR_SEVERITY) or the severity message.'),
    'poisoned-pfns': z.number().int().min(0).optional().describe('Number of pages with PG_hwpoison.'),
    'soft-offlined': z.array(PageRef).optional().describe('Pages taken offline by the corrected-error threshold or CEC.'),
    records: z.union([z.literal('injected'), z.number().int().min(0)]).optional().describe('Logged MCE records: "injected" (equal to the injected ones, ignoring TSC/TIME) or a count.'),
    'pagemap': z.record(PageRef, z.enum(['present', 'hwpoison', 'swap', 'none'])).optional().describe('What /proc/PID/pagemap shows for a virtual page.'),
    prctl: z.number().int().optional().describe('Value returned by PR_MCE_KILL_GET.'),
  })
  .strict();

// ---- steps ---------------------------------------------------------------------------------

const ProcRef = z.string().describe('A process name, or process.thread.');

const filterKeys = {
  enable: z.number().int().min(0).optional(),
  'dev-major': z.number().int().optional(),
  'dev-minor': z.number().int().optional(),
  'flags-mask': z.union([z.number().int(), z.string()]).optional(),
  'flags-value': z.union([z.number().int(), z.string()]).optional(),
  memcg: z.union([z.number().int(), Name]).optional(),
};

/** Every step is a one-key action plus an optional `expect` and `as` label. */
export const StepConfig = z
  .object({
    as: z.string().optional().describe('A label for the step in reports.'),
    expect: Expectation.optional(),
    repeat: z.number().int().min(1).max(1_000_000).optional().describe('Run the action this many times.'),
    'corrupt-pfn': z.union([PageRef, z.string()]).optional().describe('Write the page\'s pfn to hwpoison/corrupt-pfn (raw strings are parsed as kstrtoull does).'),
    'unpoison-pfn': z.union([PageRef, z.string()]).optional().describe('Write the page\'s pfn to hwpoison/unpoison-pfn.'),
    'hwpoison-filter': z.object(filterKeys).strict().optional().describe('Write the corrupt-filter-* debugfs files.'),
    madvise: z
      .object({ process: ProcRef, advice: z.enum(['hwpoison', 'soft-offline']), page: PageRef, pages: z.number().int().min(0).optional(), len: z.number().int().min(0).optional() })
      .strict()
      .optional()
      .describe('madvise(MADV_HWPOISON / MADV_SOFT_OFFLINE) on pages of a process.'),
    'hard-offline': PageRef.optional().describe('Write the page\'s physical address to /sys/devices/system/memory/hard_offline_page.'),
    'soft-offline': PageRef.optional().describe('Write the page\'s physical address to /sys/devices/system/memory/soft_offline_page.'),
    mce: z
      .object({
        records: z.string().optional().describe('Records in mce-inject\'s language (may use {phys:REF} templates).'),
        file: z.string().optional().describe('A record file, relative to the case.'),
        context: z.enum(['user', 'kernel', 'kernel-recoverable', 'irq']).optional().describe('What the CPU was doing.'),
        process: ProcRef.optional().describe('The task running on the CPU (the consumer for SRAR).'),
        page: PageRef.optional().describe('The page the record\'s ADDR points at (sets ADDR, MISC if not given).'),
        'no-answer': z.array(z.number().int().min(0)).optional().describe('CPUs that do not answer the rendezvous.'),
      })
      .strict()
      .optional()
      .describe('Raise machine-check records (mce-inject).'),
    corrected: z
      .object({ page: PageRef, count: z.number().int().min(1).optional(), cpu: z.number().int().min(0).optional(), bank: z.number().int().min(0).optional(), interval: z.number().min(0).optional() })
      .strict()
      .optional()
      .describe('Corrected memory errors at a page (found by CMCI/poll).'),
    access: z
      .object({ process: ProcRef, page: PageRef, op: z.enum(['read', 'write']).optional() })
      .strict()
      .optional()
      .describe('A load or store by a process (or thread) at a page.'),
    read: z.object({ process: ProcRef, file: Name, page: z.number().int().min(0).optional(), pages: z.number().int().min(1).optional() }).strict().optional().describe('pread() of file pages.'),
    write: z.object({ process: ProcRef, file: Name, page: z.number().int().min(0).optional(), pages: z.number().int().min(1).optional() }).strict().optional().describe('pwrite() of file pages.'),
    fsync: z.object({ process: ProcRef, file: Name }).strict().optional().describe('fsync() of a file descriptor the process holds.'),
    msync: z.object({ process: ProcRef, mapping: z.string() }).strict().optional().describe('msync(MS_SYNC) of a mapping.'),
    munmap: z.object({ process: ProcRef, mapping: z.string() }).strict().optional(),
    truncate: z.object({ file: Name, pages: z.number().int().min(0) }).strict().optional().describe('ftruncate() the file to a size in pages.'),
    sysctl: Sysctls.optional().describe('Change sysctls.'),
    prctl: z
      .object({ process: ProcRef, option: z.enum(['PR_MCE_KILL', 'PR_MCE_KILL_GET']), arg2: z.number().int().optional(), arg3: z.number().int().optional(), arg4: z.number().int().optional(), arg5: z.number().int().optional() })
      .strict()
      .optional()
      .describe('prctl() from a thread.'),
    fork: z.object({ process: ProcRef, child: Name }).strict().optional().describe('fork() a process.'),
    exit: ProcRef.optional().describe('A process exits.'),
    'swap-out': PageRef.optional().describe('Reclaim a page to swap.'),
    'drop-caches': z.literal(true).optional().describe('echo 1 > /proc/sys/vm/drop_caches'),
    writeback: Name.optional().describe('Write back a file\'s dirty pages.'),
    wait: z.union([z.number().min(0), z.string()]).optional().describe('Let time pass (seconds): deferred work and pollers run.'),
  })
  .strict();

export const Requires = z
  .object({
    kernel: z.string().optional().describe('Kernel version range, e.g. ">=6.11", ">=6.1 <6.12", or alternatives joined by || ("<6.11 || >=6.18").'),
    features: z.array(z.string()).optional().describe('Machine features: ser, cmci, lmce, hwpoison-inject, cec.'),
    targets: z.array(z.enum(['sim', 'qemu'])).optional().describe('Targets able to run the case.'),
  })
  .strict();

export const CaseConfig = z
  .object({
    name: z.string().optional().describe('Case name. Default: the file path relative to the suite.'),
    description: z.string().optional(),
    tags: z.array(z.string()).optional(),
    requires: Requires.optional(),
    todo: z.string().optional().describe('Mark the case TODO (failures do not count).'),
    skip: z.string().optional().describe('Skip the case with this reason.'),
    strict: z.boolean().optional().describe('Unexpected signals, kills, panics and BUG:/WARNING: lines fail the case. Default true.'),
    machine: MachineConfig.optional(),
    workload: Workload.optional(),
    steps: z.array(StepConfig).optional(),
    expect: Expectation.optional().describe('Expectations checked at the end of the case.'),
  })
  .strict();

export type CaseConfig = z.infer<typeof CaseConfig>;
export type StepConfig = z.infer<typeof StepConfig>;
export type Expectation = z.infer<typeof Expectation>;
export type SignalExpectation = z.infer<typeof SignalExpectation>;
export type MachineConfig = z.infer<typeof MachineConfig>;
export type ProcessConfig = z.infer<typeof ProcessConfig>;
export type MappingConfig = z.infer<typeof MappingConfig>;
export type FileConfig = z.infer<typeof FileConfig>;
export type DeviceConfig = z.infer<typeof DeviceConfig>;
export type Workload = z.infer<typeof Workload>;

/** The names of the one-key actions a step can have. */
export const STEP_ACTIONS = Object.keys(StepConfig.shape).filter((k) => k !== 'as' && k !== 'expect' && k !== 'repeat') as (keyof StepConfig)[];
