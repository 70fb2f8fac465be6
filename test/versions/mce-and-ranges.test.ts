// Version rows that only the x86 machine-check model and the case `requires:` ranges see:
// the 5.15 rendezvous timeout line (v5.12), the 5.18-6.1 severity table without
// "Uncorrected in kernel" (v6.2) and without the SEAM non-root rows (v6.10), the
// "Non signaled" spelling (v5.13), and `||` alternatives in version ranges.
import t from 'tap';
import { parseCase } from '../../runner/case/load.js';
import { runSim } from '../../runner/targets/sim/index.js';
import type { CaseObservation } from '../../runner/targets/target.js';
import { mceSeverity, MCE_PANIC_SEVERITY, MCE_AR_SEVERITY, MCE_KEEP_SEVERITY, SEVERITY_TABLES } from '../../tsrc/kernel/arch/x86/kernel/cpu/mce/severity.js';
import { PROFILES, versionSatisfies } from '../../tsrc/kernel/profiles.js';

const ctx = { timeoutMs: 10_000, checkInvariants: true, seed: 1 };
const run = (yaml: string): CaseObservation => runSim(parseCase(yaml, 'test.yaml'), ctx);
const bit = (n: number): bigint => 1n << BigInt(n);
const VAL = bit(63), UC = bit(61), EN = bit(60), MISCV = bit(59), ADDRV = bit(58), S = bit(56), AR = bit(55);
const RIPV = bit(0), EIPV = bit(1), MCIP = bit(2), SEAM_NR = bit(12);
const MCG = RIPV | EIPV | MCIP;

t.test('version ranges: || alternatives', async (t) => {
  const r = '<6.11 || >=6.12 <6.13 || >=6.18';
  t.same([...PROFILES.keys()].filter((v) => versionSatisfies(v, r)), ['5.15', '6.1', '6.12', '6.18']);
  t.same([...PROFILES.keys()].filter((v) => versionSatisfies(v, '>=6.12 <6.13 || >=6.18')), ['6.12', '6.18']);
  t.ok(versionSatisfies('6.1', '>=6.1 <6.12'), 'plain ranges unchanged');
  t.throws(() => versionSatisfies('6.1', '>=6.1 ||'), 'empty alternative rejected');
});

t.test('profile switches for the x86 severity table', async (t) => {
  const row = (v: string) => { const p = PROFILES.get(v)!; return [p.mceUncorrectedInKernelRow, p.mceSeamNonRoot]; };
  t.same(row('5.15'), [false, false]);
  t.same(row('6.1'), [false, false], 'a51cbd0d86d3 is v6.2, the SEAM rows v6.10');
  t.same(row('6.12'), [true, true]);
});

t.test('"Non signaled machine check" in every modelled table (typo fix 163b099146b8, v5.13)', async (t) => {
  for (const table of ['pre-5.18', 'pre-6.2', 'current'] as const) {
    const r = mceSeverity({ status: VAL | EN, mcgStatus: MCG, bank: 1 }, { ser: true, isExcp: true, context: 'IN_KERNEL', table, coverage: null });
    t.same([r.sev, r.msg], [MCE_KEEP_SEVERITY, 'Non signaled machine check'], table);
  }
});

t.test('pre-6.2 table: UC in kernel is PANIC "Uncorrected"; no SEAM rows', async (t) => {
  const base = { ser: false, isExcp: true, context: 'IN_KERNEL', table: 'pre-6.2', coverage: null } as const;
  t.match(mceSeverity({ status: VAL | UC | EN, mcgStatus: MCG, bank: 0 }, base), { sev: MCE_PANIC_SEVERITY, msg: 'Uncorrected', table: 'pre-6.2' });
  t.match(mceSeverity({ status: VAL | UC | EN, mcgStatus: MCG, bank: 0 }, { ...base, context: 'IN_USER' }), { sev: 5, msg: 'Uncorrected' }, 'user mode stays UC');
  t.notOk(SEVERITY_TABLES['pre-6.2'].some((r) => /SEAM|Uncorrected in kernel/.test(r.msg)));
  const seam = { status: VAL | UC | EN | S | AR | ADDRV | MISCV | 0x134n, mcgStatus: MCG | SEAM_NR, bank: 1 };
  t.match(mceSeverity(seam, { ...base, ser: true }), { sev: MCE_PANIC_SEVERITY, msg: 'Data load in unrecoverable area of kernel' });
  t.match(mceSeverity(seam, { ...base, ser: true, table: 'current' }), { sev: MCE_AR_SEVERITY, msg: 'Data load error in SEAM non-root mode' });
});

t.test('noser UC in kernel through the handler: 6.1 "Uncorrected", 6.12 "Uncorrected in kernel"', async (t) => {
  for (const [v, msg] of [['6.1', 'Uncorrected'], ['6.12', 'Uncorrected in kernel']] as const) {
    const o = run(`machine: { kernel: "${v}", cpus: 2, mca: { ser: false } }
steps:
  - mce: { records: "CPU 0 BANK 2 STATUS UNCORRECTED MCGSTATUS RIPV EIPV MCIP RIP 0x10:0xffffffff81234567" }`);
    const s = o.steps[0]!;
    t.equal(s.panic, 'Fatal machine check', `${v}: panics`);
    t.ok(s.log.includes(`mce: [Hardware Error]: Machine check: ${msg}`), `${v}: reason "${msg}"`);
  }
});

t.test('SEAM_NR record: panics on 6.1, only marks the page on 6.12', async (t) => {
  for (const v of ['6.1', '6.12']) {
    const o = run(`machine: { kernel: "${v}", cpus: 2 }
steps:
  - mce: { records: "CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS RIPV EIPV MCIP SEAM_NR", page: "free[3]" }`);
    t.equal(o.steps[0]!.panic, v === '6.1' ? 'Fatal machine check' : undefined, `${v}`);
  }
});

t.test('5.15 rendezvous timeout prints the holdout CPUs before panicking (7bb39313cd62, v5.12)', async (t) => {
  for (const tol of [1, 3]) {
    const o = run(`machine: { kernel: "5.15", cpus: 8, mca: { tolerant: ${tol} } }
steps:
  - mce: { records: "CPU 1 BANK 4 STATUS FATAL S MCGSTATUS MCIP", no-answer: [3, 4, 5, 7] }`);
    const s = o.steps[0]!;
    const line = 'mce: CPUs not responding to MCE broadcast (may include false positives): 3-5,7';
    if (tol === 1) {
      t.ok(s.log.includes(line), 'tolerant 1: holdout list');
      t.equal(s.panic, 'Timeout: Not all CPUs entered broadcast exception handler');
      t.ok(s.log.indexOf(line) < s.log.indexOf('Kernel panic - not syncing: Timeout: Not all CPUs entered broadcast exception handler'), 'before the panic');
    } else {
      t.notOk(s.log.includes(line), 'tolerant 3: no timeout panic, no list (inside the tolerant check)');
    }
  }
});
