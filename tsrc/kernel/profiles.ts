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
}

interface Row extends Omit<KernelProfile, 'major' | 'minor'> {}

/** The supported profiles, oldest first. */
const ROWS: Row[] = [
  {
    version: '6.1',
    release: '6.1.0-debian-amd64',
    madviseActionRequired: false,
    alreadyPoisoned: 'already-hardware-poisoned',
    getHwpoisonType: 'unknown page',
    meUnknownResult: 'Failed',
    thpUnsplitSignals: false,
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
  },
  {
    version: '6.12',
    release: '6.12.0-debian-amd64',
    madviseActionRequired: true,
    alreadyPoisoned: 'already-poisoned-page',
    getHwpoisonType: 'get hwpoison page',
    meUnknownResult: 'Ignored',
    thpUnsplitSignals: true,
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
  },
  {
    version: '6.18',
    release: '6.18.0-amd64',
    madviseActionRequired: true,
    alreadyPoisoned: 'already-poisoned-page',
    getHwpoisonType: 'get hwpoison page',
    meUnknownResult: 'Ignored',
    thpUnsplitSignals: true,
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

/** Does `version` satisfy a range such as ">=6.11", ">=6.1 <6.12", "6.12"? */
export function versionSatisfies(version: string, range: string): boolean {
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
