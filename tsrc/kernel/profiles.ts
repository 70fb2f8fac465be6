// Kernel version profiles: one table of switches, one row per supported kernel, so that every
// version difference the model knows (kernel-model.md §20, §23) is data, not scattered ifs.

export type AlreadyPoisonedStyle =
  /** ≤6.10 (6.1): `%#lx: already hardware poisoned`, printed before kill_accessing_process, not counted. */
  | 'already-hardware-poisoned'
  /** 6.11–6.17 mainline: `recovery action for already poisoned: Failed`, counted. */
  | 'already-poisoned-counted'
  /** 6.12.117 stable and ≥6.18: `recovery action for already poisoned page: Failed`, not counted. */
  | 'already-poisoned-page';

export interface KernelProfile {
  /** "6.1", "6.12", "6.18" ... */
  version: string;
  major: number;
  minor: number;
  /** What the kernel calls itself in uname -r (for reports). */
  release: string;
  /** v6.11: madvise(MADV_HWPOISON) passes MF_ACTION_REQUIRED (Jane Chu). */
  madviseActionRequired: boolean;
  alreadyPoisoned: AlreadyPoisonedStyle;
  /** action_page_types[] string for get_hwpoison_page failures: "unknown page" (5.14–6.10) or "get hwpoison page" (6.11+). */
  getHwpoisonType: 'unknown page' | 'get hwpoison page';
  /** me_unknown's result: Failed before 6.11, Ignored since. */
  meUnknownResult: 'Failed' | 'Ignored';
  /** v6.11: an unsplittable THP gets SIGBUS lsb 21, `unsplit thp: Failed`, -EHWPOISON (before: `thp split failed`, Ignored, -EBUSY). */
  thpUnsplitSignals: boolean;
  /** memory_failure()'s own "Memory Failure: %#lx: thp split failed" line: gone in v6.1 (Kefeng Wang's
   *  Aug 2022 cleanup left the pr_info only in soft_offline_in_use_page); the real 6.1.192 prints none. */
  mfThpSplitMsg: boolean;
  /** split_huge_page() of the huge zero page logs "huge_memory: Called split_huge_page for huge zero
   *  page" (pr_warn_ratelimited, 4737edbbdd49 in v6.3, stable to 6.1.y; seen on 6.1.192). v6.12's
   *  split_huge_page() wrapper returns min_order_for_split()'s -EBUSY first (the huge zero folio is
   *  neither anon nor mapped), so 6.12.117 prints nothing; 6.18 follows 6.12 here (not checked on a
   *  real 6.18). */
  hzpSplitWarn: boolean;
  /** v6.11: the hwpoison filter runs before the THP split (before: after it). */
  filterBeforeThpSplit: boolean;
  /** v6.11: unmap failure sends SIGBUS and results Failed (before: SIGKILL and Ignored). */
  unmapFailureSigbus: boolean;
  /** ≈6.5: hugetlbfs read() stops short before a poisoned subpage (before: -EIO). */
  hugetlbfsShortRead: boolean;
  /** ≈6.0: unpoison is refused after a hardware-originated memory failure. */
  unpoisonDisabledAfterHw: boolean;
  /** 6.3: per-node memory_failure statistics in sysfs. */
  mfStats: boolean;
  /** vm.enable_soft_offline: absent (<6.11), 0..1 (6.11–6.17), 0..3 (≥6.18). */
  enableSoftOfflineMax: number | undefined;
  /** x86 `tolerant` (removed in 5.18). */
  tolerant: boolean;
  /** 6.1 sets PG_error on every page me_pagecache_dirty handles (KPF_ERROR); 6.12 has no PG_error. */
  pgError: boolean;
  /** 6.9–6.12.117 stable_page_flags() reports KPF_KSM on every anonymous page. */
  kpfKsmOnAllAnon: boolean;
  /** 6.12: KPF_HWPOISON of a hugetlb folio shows on every subpage; 6.1: only the head. */
  hugetlbHwpoisonAllSubpages: boolean;
  /** 6.12: hugetlb signals carry the raw subpage address; 6.1: the huge-page-aligned head address. */
  hugetlbSignalRawAddr: boolean;
  /** 6.12: a tail page reports its folio's LRU/DIRTY/... in kpageflags; 6.1: only MMAP, ANON, TAIL, THP/HUGE. */
  tailFlagsFromFolio: boolean;
  /** Unpoison log format: 6.1 `Unpoison: Software-unpoisoned page %#lx`, 6.12 `Unpoison: %#lx: software-unpoisoned page`. */
  unpoisonMsgNew: boolean;
  /** Soft offline already-poisoned line: 6.1 `soft_offline_page: %#lx page already poisoned`, 6.12 `Soft offline: %#lx: page already poisoned`. */
  softOfflineMsgNew: boolean;
  /** pagemap swap type of a hwpoison entry: 26 on 6.1, 27 on 6.12. */
  hwpoisonSwapType: number;
  /** Debian builds: CONFIG_RAS_CEC=y on 6.12, not on 6.1. */
  rasCecBuiltIn: boolean;
  /** ≈6.4: KSM pages can be handled (collect_procs_ksm). */
  ksmSupported: boolean;
  /** kill_proc's log verb: "Sending SIGBUS to" (≥5.14) or "Killing" (older). */
  killProcVerb: 'Sending SIGBUS to' | 'Killing';
  /** Unmap failure line: `failed to unmap page (folio mapcount=%d)` (folio conversion, ≈6.6) or `(mapcount=%d)` (6.1). */
  unmapFailedFolioMsg: boolean;
  /**
   * MF_SW_SIMULATED and hw_memory_failure ("mm/hwpoison: disable unpoison after HW memory
   * failure", ≈5.19): madvise / corrupt-pfn / hard_offline_page pass MF_SW_SIMULATED. Before,
   * the flag does not exist (madvise passes MF_COUNT_INCREASED only, corrupt-pfn 0).
   */
  swSimulated: boolean;
  /**
   * kill_accessing_process() when current does not map the page: -EFAULT (5.13+, `ret > 0 ?
   * -EHWPOISON : -EFAULT`) or 0 (the 2025 stable fix "mm/memory-failure: fix VM_BUG_ON_PAGE...
   * do not return -EFAULT when the page is not mapped", in 6.1.y / 6.12.y).
   */
  killAccessingNotMappedRet: 0 | -14;
  /**
   * num_poisoned_pages (HardwareCorrupted) counted right after TestSetPageHWPoison (and undone on
   * the filter / buddy-retry paths), ≤ ≈6.1; since "mm/hwpoison: introduce
   * num_poisoned_pages_inc() into action_result()" (≈6.2) in action_result(). Same totals, other
   * moment. Kept false on the 6.1 row, which was checked against the action_result() counts.
   */
  hwCorruptedAtTestSet: boolean;
  /**
   * shmem keeps a poisoned page in the page cache (shmem_error_remove_page returns 0, reads -EIO):
   * "mm: shmem: don't truncate page if memory failure happens" (v5.16). Before, shmem used
   * generic_error_remove_page: the page is truncated and the data silently lost (reads zeros).
   */
  shmemKeepsPoisonedPage: boolean;
  /**
   * mm/memory-failure.c has pr_fmt("Memory failure: ") ("mm: memory-failure: convert to pr_fmt()",
   * ≈5.19/6.0). Before, lines carry explicit prefixes and try_to_split_thp_page()'s
   * `%s: %#lx: thp split failed` has none ("Memory Failure: …", "soft offline: …").
   */
  mfPrFmt: boolean;
  /**
   * ≤5.16 unpoison_memory() (until bf181c582588 "mm/hwpoison: fix unpoison_memory()", v5.17,
   * which returns -EBUSY): every refusal returns 0 (`Page was already unpoisoned`, `Someone
   * grabs/maps …`), `Memory failure is now running on %#lx` for a THP, `Software-unpoisoned free
   * page %#lx` for a refcount-0 page; no hw/slab/huge-zero checks (kernel-model.md §10 History).
   */
  unpoisonLegacy: boolean;
  /** 5.x soft offline failure lines print `type %lx (%pGp)` (6.x: `type %pGp`; §9). */
  softOfflineTypeHex: boolean;
  /**
   * Before the v6.1 hugetlb hwpoison series ("mm, hwpoison, hugetlb: support saving mechanism of
   * raw error pages", "mm, hwpoison: enable memory error handling on 1GB hugepage"):
   * memory_failure_hugetlb() ignores huge pages bigger than a PMD (`non-pmd-sized huge page:
   * Ignored`, -EBUSY) and keeps no raw error list (a second subpage of a poisoned huge page is
   * `already hardware poisoned`).
   */
  hugetlbNonPmdIgnored: boolean;
  /**
   * x86 severities[] has the PANIC row "Uncorrected in kernel" (a51cbd0d86d3 "x86/mce: Use
   * severity table to handle uncorrected errors in kernel", v6.2). Before (5.18-6.1) an
   * uncorrected error in kernel context matches "Uncorrected" and is turned into PANIC after
   * matching, so the panic reason reads "Machine check: Uncorrected".
   */
  mceUncorrectedInKernelRow: boolean;
  /**
   * SEAM non-root #MC handling: the two AR severity rows and SetPageHWPoison() in
   * do_machine_check() ("x86/mce: Implement recovery for errors in TDX/SEAM non-root mode",
   * v6.10). Before, such a record is a data load / instruction fetch in kernel: PANIC.
   */
  mceSeamNonRoot: boolean;
  /**
   * v6.5 (e40879b6d7d8, "x86/MCE: Check a hw error's address to determine proper recovery
   * action"): a user-mode #MC picks kill_me_now when mce_usable_address() fails. Before, the
   * choice was kill_current_task (no RIPV): an unusable address (e.g. MISC LSB > PAGE_SHIFT)
   * still went to kill_me_maybe -> memory_failure() of the masked address (checked on 6.1.192).
   */
  mceUserUsableAddressCheck: boolean;
  /**
   * CMCI storm handling. false (≤6.7, arch/x86/kernel/cpu/mce/intel.c cmci_storm_detect()):
   * more than CMCI_STORM_THRESHOLD (15) CMCIs within CMCI_STORM_INTERVAL (1 s) on a CPU clear
   * CMCI_EN on its banks and poll them every second (`mce: CMCI storm detected: switching to poll
   * mode` / `mce: CMCI storm subsided: switching to interrupt mode`, machine-wide). true (v6.8,
   * Tony Luck's "x86/mce: Add per-bank CMCI storm mitigation" 7eae17c4add5 and "x86/mce: Handle
   * Intel threshold interrupt storms" 1f68ce2a0270; threshold.c mce_track_storm()): a per-bank
   * 64-bit history of polls, STORM_BEGIN_THRESHOLD (5) errors set the CMCI threshold to 32749 and
   * poll the bank every second until STORM_END_POLL_THRESHOLD+1 (30) clean polls
   * (`CPU%d BANK%d CMCI storm detected` / `CPU%d BANK%d CMCI storm subsided`, no "mce: " prefix).
   */
  cmciStormPerBank: boolean;
}

interface Row extends Omit<KernelProfile, 'major' | 'minor'> {}

/** The supported profiles, oldest first. */
const ROWS: Row[] = [
  {
    // 5.15 LTS (≈ Ubuntu 22.04's base). From the v5.15 sources and kernel-model.md §20, §10
    // History, §9, §19.8; not checked on a real kernel. tolerant still exists (removed in 5.18)
    // and the pre-5.18 severity table applies; user-mode AR goes through task_work
    // (kill_me_maybe, ≈5.8+); no MF_SW_SIMULATED (5.19), no per-node mf stats (6.3), no
    // vm.enable_soft_offline (6.11), KSM pages refused (≈6.4), shmem truncated (kept since 5.16).
    version: '5.15',
    release: '5.15.0-generic',
    madviseActionRequired: false,
    alreadyPoisoned: 'already-hardware-poisoned',
    getHwpoisonType: 'unknown page',
    meUnknownResult: 'Failed',
    thpUnsplitSignals: false,
    mfThpSplitMsg: true,
    hzpSplitWarn: false,
    filterBeforeThpSplit: false,
    unmapFailureSigbus: false,
    hugetlbfsShortRead: false,
    unpoisonDisabledAfterHw: false,
    mfStats: false,
    enableSoftOfflineMax: undefined,
    tolerant: true,
    pgError: true,
    kpfKsmOnAllAnon: false,
    hugetlbHwpoisonAllSubpages: false,
    hugetlbSignalRawAddr: false,
    tailFlagsFromFolio: false,
    unpoisonMsgNew: false,
    softOfflineMsgNew: false,
    // Computed, not observed: 5.15 has no PTE-marker type and one migration type less than 6.1
    // (both 5.19), so SWP_HWPOISON is 2 above 6.1's observed 26.
    hwpoisonSwapType: 28,
    rasCecBuiltIn: false,
    ksmSupported: false,
    killProcVerb: 'Sending SIGBUS to',
    unmapFailedFolioMsg: false,
    swSimulated: false,
    killAccessingNotMappedRet: -14,
    hwCorruptedAtTestSet: true,
    shmemKeepsPoisonedPage: false,
    mfPrFmt: false,
    unpoisonLegacy: true,
    softOfflineTypeHex: true,
    hugetlbNonPmdIgnored: true,
    mceUncorrectedInKernelRow: false,
    mceSeamNonRoot: false,
    mceUserUsableAddressCheck: false,
    cmciStormPerBank: false,
  },
  {
    version: '6.1',
    release: '6.1.0-debian-amd64',
    madviseActionRequired: false,
    alreadyPoisoned: 'already-hardware-poisoned',
    getHwpoisonType: 'unknown page',
    meUnknownResult: 'Failed',
    thpUnsplitSignals: false,
    mfThpSplitMsg: false,
    hzpSplitWarn: true,
    filterBeforeThpSplit: false,
    unmapFailureSigbus: false,
    hugetlbfsShortRead: false,
    unpoisonDisabledAfterHw: true,
    mfStats: false,
    enableSoftOfflineMax: undefined,
    tolerant: false,
    pgError: true,
    kpfKsmOnAllAnon: false,
    hugetlbHwpoisonAllSubpages: false,
    hugetlbSignalRawAddr: false,
    tailFlagsFromFolio: false,
    unpoisonMsgNew: false,
    softOfflineMsgNew: false,
    hwpoisonSwapType: 26,
    rasCecBuiltIn: false,
    ksmSupported: false,
    killProcVerb: 'Sending SIGBUS to',
    unmapFailedFolioMsg: false,
    swSimulated: true,
    killAccessingNotMappedRet: 0,
    hwCorruptedAtTestSet: false,
    shmemKeepsPoisonedPage: true,
    mfPrFmt: true,
    unpoisonLegacy: false,
    softOfflineTypeHex: false,
    hugetlbNonPmdIgnored: false,
    mceUncorrectedInKernelRow: false,
    mceSeamNonRoot: false,
    mceUserUsableAddressCheck: false,
    cmciStormPerBank: false,
  },
  {
    // 6.11 mainline (≈): Jane Chu's series is in (madvise AR, SIGBUS on unmap failure / unsplit
    // THP, `get hwpoison page`), the already-poisoned event is both logged the old way and
    // counted as `already poisoned: Failed`; enable_soft_offline 0..1. Not checked on a real kernel.
    version: '6.11',
    release: '6.11.0',
    madviseActionRequired: true,
    alreadyPoisoned: 'already-poisoned-counted',
    getHwpoisonType: 'get hwpoison page',
    meUnknownResult: 'Ignored',
    thpUnsplitSignals: true,
    mfThpSplitMsg: false,
    hzpSplitWarn: true,
    filterBeforeThpSplit: true,
    unmapFailureSigbus: true,
    hugetlbfsShortRead: true,
    unpoisonDisabledAfterHw: true,
    mfStats: true,
    enableSoftOfflineMax: 1,
    tolerant: false,
    pgError: true,
    kpfKsmOnAllAnon: true,
    hugetlbHwpoisonAllSubpages: true,
    hugetlbSignalRawAddr: true,
    tailFlagsFromFolio: true,
    unpoisonMsgNew: true,
    softOfflineMsgNew: true,
    hwpoisonSwapType: 27,
    rasCecBuiltIn: false,
    ksmSupported: true,
    killProcVerb: 'Sending SIGBUS to',
    unmapFailedFolioMsg: true,
    swSimulated: true,
    killAccessingNotMappedRet: 0,
    hwCorruptedAtTestSet: false,
    shmemKeepsPoisonedPage: true,
    mfPrFmt: true,
    unpoisonLegacy: false,
    softOfflineTypeHex: false,
    hugetlbNonPmdIgnored: false,
    mceUncorrectedInKernelRow: true,
    mceSeamNonRoot: true,
    mceUserUsableAddressCheck: true,
    cmciStormPerBank: true,
  },
  {
    version: '6.12',
    release: '6.12.0-debian-amd64',
    madviseActionRequired: true,
    alreadyPoisoned: 'already-poisoned-page',
    getHwpoisonType: 'get hwpoison page',
    meUnknownResult: 'Ignored',
    thpUnsplitSignals: true,
    mfThpSplitMsg: false,
    hzpSplitWarn: false,
    filterBeforeThpSplit: true,
    unmapFailureSigbus: true,
    hugetlbfsShortRead: true,
    unpoisonDisabledAfterHw: true,
    mfStats: true,
    enableSoftOfflineMax: 1,
    tolerant: false,
    pgError: false,
    kpfKsmOnAllAnon: true,
    hugetlbHwpoisonAllSubpages: true,
    hugetlbSignalRawAddr: true,
    tailFlagsFromFolio: true,
    unpoisonMsgNew: true,
    softOfflineMsgNew: true,
    hwpoisonSwapType: 27,
    rasCecBuiltIn: true,
    ksmSupported: true,
    killProcVerb: 'Sending SIGBUS to',
    unmapFailedFolioMsg: true,
    swSimulated: true,
    killAccessingNotMappedRet: 0,
    hwCorruptedAtTestSet: false,
    shmemKeepsPoisonedPage: true,
    mfPrFmt: true,
    unpoisonLegacy: false,
    softOfflineTypeHex: false,
    hugetlbNonPmdIgnored: false,
    mceUncorrectedInKernelRow: true,
    mceSeamNonRoot: true,
    mceUserUsableAddressCheck: true,
    cmciStormPerBank: true,
  },
  {
    version: '6.18',
    release: '6.18.0-amd64',
    madviseActionRequired: true,
    alreadyPoisoned: 'already-poisoned-page',
    getHwpoisonType: 'get hwpoison page',
    meUnknownResult: 'Ignored',
    thpUnsplitSignals: true,
    mfThpSplitMsg: false,
    hzpSplitWarn: false,
    filterBeforeThpSplit: true,
    unmapFailureSigbus: true,
    hugetlbfsShortRead: true,
    unpoisonDisabledAfterHw: true,
    mfStats: true,
    enableSoftOfflineMax: 3,
    tolerant: false,
    pgError: false,
    kpfKsmOnAllAnon: false,
    hugetlbHwpoisonAllSubpages: true,
    hugetlbSignalRawAddr: true,
    tailFlagsFromFolio: true,
    unpoisonMsgNew: true,
    softOfflineMsgNew: true,
    hwpoisonSwapType: 27,
    rasCecBuiltIn: true,
    ksmSupported: true,
    killProcVerb: 'Sending SIGBUS to',
    unmapFailedFolioMsg: true,
    swSimulated: true,
    killAccessingNotMappedRet: 0,
    hwCorruptedAtTestSet: false,
    shmemKeepsPoisonedPage: true,
    mfPrFmt: true,
    unpoisonLegacy: false,
    softOfflineTypeHex: false,
    hugetlbNonPmdIgnored: false,
    mceUncorrectedInKernelRow: true,
    mceSeamNonRoot: true,
    mceUserUsableAddressCheck: true,
    cmciStormPerBank: true,
  },
];

export const PROFILES: ReadonlyMap<string, KernelProfile> = new Map(
  ROWS.map((r) => {
    const [major, minor] = r.version.split('.').map(Number) as [number, number];
    return [r.version, { ...r, major, minor }];
  }),
);

export const DEFAULT_KERNEL = '6.12';

export function profileFor(version: string): KernelProfile | undefined {
  return PROFILES.get(version);
}

/** Compares kernel versions "6.1" < "6.12". */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Does `version` satisfy a range such as ">=6.11", ">=6.1 <6.12", "6.12"? Space-separated
 * comparators must all hold; `||` separates alternatives (">=6.12 <6.13 || >=6.18": a behaviour
 * that 6.12.y stable and 6.18 share but the 6.11-6.17 mainline kernels in between lack).
 */
export function versionSatisfies(version: string, range: string): boolean {
  const alternatives = range.split('||');
  if (alternatives.length > 1) return alternatives.map((a) => { if (!a.trim()) throw new Error(`bad version range "${range}"`); return versionSatisfies(version, a); }).some(Boolean);
  for (const part of range.trim().split(/\s+/)) {
    const m = /^(>=|<=|>|<|=)?(\d+(?:\.\d+)*)$/.exec(part);
    if (!m) throw new Error(`bad version range "${range}"`);
    const c = compareVersions(version, m[2]!);
    const op = m[1] ?? '=';
    const ok = op === '>=' ? c >= 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : op === '<' ? c < 0 : c === 0;
    if (!ok) return false;
  }
  return true;
}
