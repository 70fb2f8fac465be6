// Property-based generators (fast-check) of random valid cases: machines, workloads and
// operation sequences. Used by the fuzz smoke test and by `npm run fuzz`.
import fc from 'fast-check';
import type { CaseConfig, StepConfig } from '../runner/case/schema.js';

const PROCS = ['p0', 'p1', 'p2'] as const;
const MAPS = ['m0', 'm1'] as const;

const pageRef = fc.tuple(fc.constantFrom(...PROCS), fc.constantFrom(...MAPS), fc.integer({ min: 0, max: 3 })).map(([p, m, i]) => `${p}.${m}[${i}]`);
const anyRef = fc.oneof(pageRef, fc.constantFrom('file:f0[0]', 'file:f0[1]', 'file:f1[0]', 'zero', 'free[0]', 'slab[0]', 'kernel[0]'));

const step: fc.Arbitrary<StepConfig> = fc.oneof(
  anyRef.map((r): StepConfig => ({ 'corrupt-pfn': r })),
  anyRef.map((r): StepConfig => ({ 'unpoison-pfn': r })),
  anyRef.map((r): StepConfig => ({ 'soft-offline': r })),
  anyRef.map((r): StepConfig => ({ 'hard-offline': r })),
  fc.tuple(fc.constantFrom(...PROCS), pageRef, fc.constantFrom('hwpoison' as const, 'soft-offline' as const), fc.integer({ min: 1, max: 3 })).map(([p, r, advice, pages]): StepConfig => ({ madvise: { process: p, page: r.replace(/^p\d/, p), advice, pages } })),
  fc.tuple(fc.constantFrom(...PROCS), pageRef, fc.constantFrom('read' as const, 'write' as const)).map(([p, r, op]): StepConfig => ({ access: { process: p, page: r.replace(/^p\d/, p), op } })),
  fc.tuple(fc.constantFrom(...PROCS), fc.constantFrom('f0', 'f1')).map(([p, f]): StepConfig => ({ fsync: { process: p, file: f } })),
  fc.tuple(fc.constantFrom(...PROCS), fc.constantFrom('f0', 'f1'), fc.integer({ min: 0, max: 1 })).map(([p, f, page]): StepConfig => ({ read: { process: p, file: f, page } })),
  fc.tuple(fc.constantFrom(...PROCS), fc.constantFrom('f0', 'f1'), fc.integer({ min: 0, max: 1 })).map(([p, f, page]): StepConfig => ({ write: { process: p, file: f, page } })),
  fc.constantFrom(...PROCS).map((p): StepConfig => ({ 'swap-out': `${p}.m0[0]` })),
  fc.tuple(fc.constantFrom(...PROCS), fc.constantFrom(...MAPS)).map(([p, m]): StepConfig => ({ munmap: { process: p, mapping: m } })),
  fc.constantFrom(...PROCS).map((p): StepConfig => ({ exit: p })),
  fc.tuple(fc.constantFrom('f0', 'f1'), fc.integer({ min: 0, max: 2 })).map(([f, pages]): StepConfig => ({ truncate: { file: f, pages } })),
  fc.integer({ min: 0, max: 1 }).map((v): StepConfig => ({ sysctl: { 'vm.memory_failure_early_kill': v } })),
  fc.tuple(fc.constantFrom(...PROCS), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })).map(([p, a2, a3]): StepConfig => ({ prctl: { process: p, option: 'PR_MCE_KILL', arg2: a2, arg3: a3 } })),
  fc.record({ enable: fc.integer({ min: 0, max: 1 }), 'flags-mask': fc.constantFrom(0, 1 << 5, 1 << 12, 1 << 19), 'flags-value': fc.constantFrom(0, 1 << 5, 1 << 12) }).map((f): StepConfig => ({ 'hwpoison-filter': f })),
  fc.constant<StepConfig>({ 'drop-caches': true }),
  fc.constant<StepConfig>({ wait: 1 }),
);

const mapping = (name: string) =>
  fc.oneof(
    fc.record({ kind: fc.constant('anon' as const), shared: fc.boolean(), mlock: fc.boolean(), populate: fc.constantFrom('none' as const, 'read' as const, 'write' as const) }),
    fc.record({ kind: fc.constant('file' as const), file: fc.constantFrom('f0', 'f1'), shared: fc.boolean(), populate: fc.constantFrom('none' as const, 'read' as const, 'write' as const) }),
    fc.record({ kind: fc.constant('shmem' as const), populate: fc.constantFrom('read' as const, 'write' as const) }),
  ).map((m) => ({ name, pages: 4, ...m }));

/** A random valid case: up to three processes (the third may be a fork), two files, steps. */
export const caseArb: fc.Arbitrary<CaseConfig> = fc
  .record({
    kernel: fc.constantFrom('6.1', '6.12', '6.18'),
    earlyKill: fc.integer({ min: 0, max: 1 }),
    fs1: fc.constantFrom('tmpfs' as const, 'ext4' as const, 'ramfs' as const),
    sigbus: fc.constantFrom('handler' as const, 'default' as const, 'ignore' as const, 'block' as const),
    m0: mapping('m0'),
    m1: mapping('m1'),
    mce: fc.constantFrom('early' as const, 'late' as const, 'default' as const),
    steps: fc.array(step, { minLength: 1, maxLength: 12 }),
  })
  .map(
    (r): CaseConfig => ({
      name: 'fuzz',
      strict: false,
      machine: { kernel: r.kernel, memory: '256M', sysctl: { 'vm.memory_failure_early_kill': r.earlyKill } },
      workload: {
        devices: [{ name: 'd1', fs: r.fs1 }],
        files: [
          { name: 'f0', pages: 4, dirty: [1] },
          { name: 'f1', device: 'd1', pages: 4 },
        ],
        processes: [
          { name: 'p0', sigbus: r.sigbus, 'mce-kill': r.mce, threads: [{ name: 't1', 'mce-kill': 'early' }], mappings: [r.m0, r.m1] },
          { name: 'p1', mappings: [r.m1, r.m0] },
          { name: 'p2', parent: 'p0' },
        ],
      },
      steps: r.steps,
    }),
  );
