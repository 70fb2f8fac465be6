// Model-level benchmarks, run through the model's API (World / Kernel), each in a child process
// of its own so that heap and RSS figures are not polluted by other scenarios:
//   node dist/bench/model.js size <bytes> [touchPages]
//   node dist/bench/model.js rmap <mappers> [bystanders]
//   node dist/bench/model.js storm <injections>
// Each prints one JSON object on stdout.
import { fileURLToPath } from 'node:url';
import { World } from '../runner/targets/sim/world.js';
import type { CaseConfig } from '../runner/case/schema.js';
import { Kernel } from '../tsrc/kernel/kernel.js';
import { DEFAULT_KERNEL, profileFor } from '../tsrc/kernel/profiles.js';
import { loadHwpoisonInject, writeHwpoisonDebugfs } from '../tsrc/kernel/mm/hwpoison-inject.js';
import { PAGE_SIZE } from '../tsrc/kernel/mm/mm.js';
import { makeLayout } from '../runner/targets/sim/layout.js';
import { prctl, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY } from '../tsrc/kernel/kernel/sys.js';

const MB = 1024 * 1024;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function mem(): { heapMB: number; rssMB: number; maxRssMB: number } {
  const u = process.memoryUsage();
  return { heapMB: u.heapUsed / MB, rssMB: u.rss / MB, maxRssMB: process.resourceUsage().maxRSS / 1024 };
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A machine of `bytes` through World (the sim target's builder), with `touch` anon pages written. */
export function sizeScenario(bytes: number, touch: number, runs = 15): Record<string, number> {
  const cfg = (): CaseConfig =>
    ({
      machine: { memory: bytes },
      workload: touch ? { processes: [{ name: 'p', mappings: [{ name: 'buf', kind: 'anon', pages: touch, populate: 'write' }] }] } : {},
    }) as unknown as CaseConfig;
  const before = mem();
  let t0 = performance.now();
  let keep: World | undefined = new World(cfg());
  const firstMs = performance.now() - t0;
  const after = mem();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    keep = undefined;
    t0 = performance.now();
    keep = new World(cfg());
    times.push(performance.now() - t0);
  }
  const pages = keep.k.alloc.pages.size;
  return { firstMs, medianMs: median(times), heapMB: after.heapMB - before.heapMB, rssMB: mem().rssMB, maxRssMB: mem().maxRssMB, structPages: pages };
}

function newKernel(memoryBytes: bigint): Kernel {
  const k = new Kernel({ profile: profileFor(DEFAULT_KERNEL)!, layout: makeLayout({ memoryBytes, nodes: 1, holes: [] }) });
  // As the runner runs cases: without the decision trail (it is rebuilt only for failures).
  k.tracing = false;
  loadHwpoisonInject(k);
  return k;
}

const inject = (k: Kernel, pfn: number): number => k.syscall(null, () => writeHwpoisonDebugfs(k, 'corrupt-pfn', `0x${pfn.toString(16)}`), 0);

/**
 * `mappers` processes map one shared 1 GiB file (262144 pages) and write its page 4242; then one
 * corrupt-pfn on that page with early kill. `bystanders` more processes exist but map nothing.
 */
export function rmapScenario(mappers: number, bystanders: number, runs = 5): Record<string, number> {
  const FILE_PAGES = 262144;
  const TARGET = 4242;
  const times: number[] = [];
  const setups: number[] = [];
  const cpu: number[] = [];
  let signalled = 0;
  for (let r = 0; r < runs; r++) {
    gc();
    const ts = performance.now();
    const k = newKernel(64n << 30n);
    k.writeSysctl('vm.memory_failure_early_kill', 1);
    const sb = k.mountDevice('sda', 'ext4', 8, 0);
    const inode = k.createFile(sb, 'data', FILE_PAGES);
    for (let i = 0; i < bystanders; i++) k.createProcess(`idle${i}`, 'idle', { sigbus: 'handler' });
    for (let i = 0; i < mappers; i++) {
      const proc = k.createProcess(`m${i}`, 'mapper', { sigbus: 'handler' });
      const vma = k.mmap(proc, { pages: FILE_PAGES, shared: true, file: inode, name: 'data' });
      const res = k.access(proc.leader, vma.start + TARGET * PAGE_SIZE, true);
      if (res.kind !== 'ok') throw new Error(`access failed: ${res.kind}`);
    }
    setups.push(performance.now() - ts);
    const pfn = inode.cache.get(TARGET)!.pfn;
    const mark = k.delivered.length;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const ret = inject(k, pfn);
    times.push(performance.now() - t0);
    const cu = process.cpuUsage(c0);
    cpu.push((cu.user + cu.system) / 1000);
    if (ret !== 0) throw new Error(`corrupt-pfn returned ${ret}`);
    signalled = new Set(k.delivered.slice(mark).map((s) => s.pid)).size;
  }
  return { injectMs: median(times), injectCpuMs: median(cpu), setupMs: median(setups), signalled, ...mem() };
}

/**
 * 100,000 corrupt-pfn over a 1 TiB machine with a busy workload: 128 processes with 512 dirty
 * anonymous pages each (a quarter of them early-kill), 16 more sharing a 4096-page file. Half the
 * injections hit workload pages (or pages already poisoned), half random pfns anywhere in RAM.
 */
export function stormScenario(n: number): Record<string, number> {
  const k = newKernel(1n << 40n);
  const sb = k.mountDevice('sda', 'ext4', 8, 0);
  const inode = k.createFile(sb, 'shared', 4096);
  const used: number[] = [];
  for (let i = 0; i < 128; i++) {
    const proc = k.createProcess(`w${i}`, 'worker', { sigbus: i % 8 === 7 ? 'default' : 'handler' });
    if (i % 4 === 0) prctl(proc.leader, PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY);
    const vma = k.mmap(proc, { pages: 512, shared: false, name: 'heap' });
    for (let p = 0; p < 512; p++) {
      const res = k.access(proc.leader, vma.start + p * PAGE_SIZE, true);
      if (res.kind === 'ok') used.push(res.pfn);
    }
  }
  for (let i = 0; i < 16; i++) {
    const proc = k.createProcess(`s${i}`, 'sharer', { sigbus: 'handler' });
    const vma = k.mmap(proc, { pages: 4096, shared: true, file: inode, name: 'shared' });
    for (let p = i; p < 4096; p += 16) k.access(proc.leader, vma.start + p * PAGE_SIZE, i % 2 === 0);
  }
  for (const p of inode.cache.values()) used.push(p.pfn);
  gc();
  const base = mem();
  let seed = 12345;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const maxPfn = k.alloc.layout.maxPfn;
  const mark = k.delivered.length;
  let failures = 0;
  let peakRss = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const pfn = i % 2 === 0 ? used[Math.floor(rand() * used.length)]! : 0x1000 + Math.floor(rand() * (maxPfn - 0x1000));
    if (inject(k, pfn) !== 0) failures++;
    if ((i & 0x3fff) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const ms = performance.now() - t0;
  const cu = process.cpuUsage(c0);
  const end = mem();
  return {
    ms,
    cpuMs: (cu.user + cu.system) / 1000,
    perSec: (n / ms) * 1000,
    failures,
    signals: k.delivered.length - mark,
    poisoned: k.numPoisonedPages,
    logLines: k.log.lines.length,
    baseRssMB: base.rssMB,
    rssMB: end.rssMB,
    heapMB: end.heapMB,
    maxRssMB: Math.max(end.maxRssMB, peakRss / MB),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [what, a, b] = process.argv.slice(2);
  let out: Record<string, number>;
  if (what === 'size') out = sizeScenario(Number(a), Number(b ?? 0));
  else if (what === 'rmap') out = rmapScenario(Number(a), Number(b ?? 0));
  else if (what === 'storm') out = stormScenario(Number(a ?? 100000));
  else throw new Error(`unknown scenario ${what}`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
