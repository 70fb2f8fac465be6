// do_machine_check()'s decisions on the simulated machine: rendezvous, panics, task_work, the
// poller's logging rules, the gen-pool notifier chain, CEC and the mcelog page threshold.
import t from 'tap';
import { parseCase } from '../../runner/case/load.js';
import { runSim } from '../../runner/targets/sim/index.js';
import type { CaseObservation } from '../../runner/targets/target.js';
import { World } from '../../runner/targets/sim/world.js';
import { mceWorld } from '../../runner/targets/sim/mce-extensions.js';
import { stepAction } from '../../runner/targets/sim/extensions.js';
import { cpuList, mceUsableAddress, severityRowName } from '../../tsrc/kernel/arch/x86/kernel/cpu/mce/core.js';
import { SEVERITIES, mceSeverity, MCE_NO_SEVERITY, MCE_PANIC_SEVERITY } from '../../tsrc/kernel/arch/x86/kernel/cpu/mce/severity.js';
import { Cec } from '../../tsrc/kernel/drivers/ras/cec.js';
import { PageThreshold } from '../../tsrc/tools/mcelog/page.js';

const ctx = { timeoutMs: 10_000, checkInvariants: true, seed: 1 };
const run = (yaml: string): CaseObservation => runSim(parseCase(yaml, 'test.yaml'), ctx);
const step = (o: CaseObservation, i = 0) => o.steps[i]!;
const WL = `
workload:
  processes:
    - name: v
      mappings:
        - { name: buf, kind: anon, pages: 4 }`;

t.test('broadcast PCC: every CPU logs, the monarch panics "Fatal machine check" (stop)', async (t) => {
  const o = run(`machine: { cpus: 4 }
steps:
  - mce: { records: "CPU 2 BANK 4 STATUS FATAL S MCGSTATUS MCIP" }`);
  const s = step(o);
  t.equal(s.panic, 'Fatal machine check');
  t.same(s.severity, { level: 'MCE_PANIC_SEVERITY', msg: 'Processor context corrupt' });
  const i = s.log.indexOf('mce: [Hardware Error]: Machine check: Processor context corrupt');
  t.ok(i > 0, 'exp line');
  t.equal(s.log[i - 1], "mce: [Hardware Error]: Run the above through 'mcelog --ascii'");
  t.equal(s.log[i + 1], 'Kernel panic - not syncing: Fatal machine check');
  t.ok(s.log.includes('mce: [Hardware Error]: CPU 2: Machine Check Exception: 4 Bank 4: b300000000000000'));
  t.same(s.answers.records?.logged.length, 1);
});

t.test('fake_panic: only the first mce_panic() of a boot prints; the machine goes on', async (t) => {
  const o = run(`machine: { cpus: 2, panic: fake }
steps:
  - mce: { records: "CPU 0 BANK 4 STATUS FATAL S MCGSTATUS MCIP" }
  - mce: { records: "CPU 0 BANK 4 STATUS FATAL S MCGSTATUS MCIP" }`);
  t.equal(step(o, 0).panic, 'Fatal machine check');
  t.ok(step(o, 0).log.includes('mce: [Hardware Error]: Fake kernel panic: Fatal machine check'));
  t.equal(step(o, 1).notRun, undefined);
  t.equal(step(o, 1).panic, undefined, 'mce_fake_panicked > 1: silent');
  t.notOk(step(o, 1).log.some((l) => l.includes('Fake kernel panic')));
  t.equal(o.final.panic, undefined);
});

t.test('nothing valid anywhere: "Fatal machine check from unknown source"', async (t) => {
  const o = run(`machine: { cpus: 2 }
steps:
  - mce: { records: "CPU 0 BANK 2 STATUS UC S MCGSTATUS MCIP RIPV" }`);
  t.equal(step(o).panic, 'Fatal machine check from unknown source');
  t.equal(step(o).severity, undefined, 'nothing graded');
});

t.test('a KEEP-only broadcast (UCNA in #MC) is also "unknown source"', async (t) => {
  const o = run(`machine: { cpus: 2 }
steps:
  - mce: { records: "CPU 0 BANK 2 STATUS UNCORRECTED MCGSTATUS MCIP RIPV EXCP" }`);
  t.equal(step(o).panic, 'Fatal machine check from unknown source');
  t.equal(step(o).severity?.msg, 'Uncorrected no action required');
});

t.test('rendezvous timeout: CPU list, panic message; monarch_timeout 0 skips the rendezvous', async (t) => {
  const o = run(`machine: { cpus: 8 }
steps:
  - mce: { records: "CPU 1 BANK 4 STATUS FATAL S MCGSTATUS MCIP", no-answer: [3, 4, 5, 7] }`);
  t.ok(step(o).log.includes('mce: CPUs not responding to MCE broadcast (may include false positives): 3-5,7'));
  t.equal(step(o).panic, 'Timeout: Not all CPUs entered broadcast exception handler');
  const z = run(`machine: { cpus: 4, mca: { monarch-timeout-us: 0 } }
steps:
  - mce: { records: "CPU 0 BANK 4 STATUS FATAL S MCGSTATUS MCIP NOBROADCAST" }`);
  t.equal(step(z).panic, 'Fatal machine check on current CPU', 'no rendezvous: local no_way_out panics');
  t.notOk(step(z).log.some((l) => l.includes('not responding')));
  const off = run(`machine: { cpus: 4, offline-cpus: [1, 2, 3] }
steps:
  - mce: { records: "CPU 0 BANK 4 STATUS FATAL S MCGSTATUS MCIP NOBROADCAST" }`);
  t.equal(step(off).panic, 'Fatal machine check', 'offline CPUs are not waited for');
  t.equal(cpuList([0, 2, 3, 4, 9]), '0,2-4,9');
});

t.test('SRAR in user mode: kill_me_maybe order, AR signal, MF_MUST_KILL without RIPV', async (t) => {
  const o = run(`machine: { cpus: 2 }${WL}
steps:
  - mce: { records: "CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS RIPV EIPV MCIP", process: v, page: "v.buf[1]" }`);
  const s = step(o);
  const ua = s.log.findIndex((l) => l.startsWith('mce: Uncorrected hardware memory error in user-access at '));
  const mf = s.log.findIndex((l) => l.includes('recovery action for dirty LRU page: Recovered'));
  const dump = s.log.findIndex((l) => l.includes('Machine Check Exception: 7 Bank 1'));
  t.ok(ua >= 0 && ua < mf && mf < dump, 'user-access line, memory_failure, then the deferred dump (K13)');
  t.notOk(s.log.some((l) => l.includes('mcelog --ascii')), 'no "Run the above" for a logged record (K14)');
  t.match(s.signals, [{ proc: 'v', code: 'BUS_MCEERR_AR', lsb: 12 }]);
  t.ok(s.trail.some((e) => e.fn === 'memory_failure' && e.msg.includes('MF_ACTION_REQUIRED') && !e.msg.includes('MF_MUST_KILL')));
  const n = run(`machine: { cpus: 2 }${WL}
steps:
  - mce: { records: "CPU 0 BANK 0 STATUS 0xbd80000000000150 MCGSTATUS EIPV MCIP", process: v, page: "v.buf[1]" }`);
  t.ok(step(n).trail.some((e) => e.fn === 'memory_failure' && e.msg.includes('MF_MUST_KILL')));
});

t.test('kill_me_maybe: memory_failure failure → "Memory error not recovered" + SI_KERNEL SIGBUS', async (t) => {
  const o = run(`machine: { cpus: 2 }${WL}
steps:
  - mce: { records: "CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS RIPV EIPV MCIP", process: v, page: "slab[0]" }`);
  const s = step(o);
  t.ok(s.log.includes('mce: Memory error not recovered'));
  t.match(s.signals, [{ proc: 'v', signo: 'SIGBUS', code: 'SI_KERNEL' }]);
  t.equal(s.signals[0]?.addr, undefined);
});

t.test('SRAR on an already-poisoned page the task does not map: ret 0, no signal (§23.1 #53)', async (t) => {
  const o = run(`machine: { cpus: 2 }${WL}
steps:
  - corrupt-pfn: "free[2]"
  - mce: { records: "CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS RIPV EIPV MCIP", process: v, page: "free[2]" }`);
  t.same(step(o, 1).signals, []);
  t.notOk(step(o, 1).log.includes('mce: Memory error not recovered'));
});

t.test('queue_task_work: more than 10 #MCs on one page before task_work → panic', async (t) => {
  const rec = 'CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS RIPV EIPV MCIP ADDR {phys:v.buf[0]} MISC 0x8c\n';
  const o = run(`machine: { cpus: 1 }${WL}
steps:
  - mce:
      process: v
      records: |
${rec.repeat(11).split('\n').filter(Boolean).map((l) => `        ${l}`).join('\n')}`);
  t.equal(step(o).panic, 'Too many consecutive machine checks while accessing user data');
  const ten = run(`machine: { cpus: 1 }${WL}
steps:
  - mce:
      process: v
      records: |
${rec.repeat(10).split('\n').filter(Boolean).map((l) => `        ${l}`).join('\n')}`);
  t.equal(step(ten).panic, undefined);
  t.equal(step(ten).log.filter((l) => l.startsWith('mce: Uncorrected hardware memory error')).length, 1, 'one task_work for ten #MCs');
});

t.test('poller rules: SER logs CE, EN=0 and UCNA; leaves S=1 UC; non-SER skips UC', async (t) => {
  // mce-inject holds one record per CPU: four CPUs, one record each.
  const o = run(`machine: { cpus: 4 }
steps:
  - mce:
      records: |
        CPU 0 BANK 1 STATUS CORRECTED POLL HOLD
        CPU 1 BANK 2 STATUS VAL UC POLL HOLD
        CPU 2 BANK 3 STATUS UNCORRECTED POLL HOLD
        CPU 3 BANK 4 STATUS UNCORRECTED SRAR POLL`);
  const logged = step(o).answers.records?.logged ?? [];
  t.equal(logged.length, 3);
  t.notOk(logged.some((l) => l.includes('BANK 4')), 'S=1 left for #MC');
  const n = run(`machine: { cpus: 2, mca: { ser: false } }
steps:
  - mce: { records: "CPU 0 BANK 1 STATUS CORRECTED POLL HOLD\\nCPU 1 BANK 3 STATUS UNCORRECTED POLL" }`);
  t.equal(step(n).answers.records?.logged.length, 1);
  t.equal(step(n).severity?.msg, 'Corrected error');
});

t.test('corrected errors through CMCI: record dump format, no panic, no signal', async (t) => {
  const o = run(`machine: { cpus: 2 }${WL}
steps:
  - corrected: { page: "v.buf[0]", bank: 7 }`);
  const s = step(o);
  t.equal(s.log.find((l) => l.includes('Machine Check:')), 'mce: [Hardware Error]: CPU 0: Machine Check: 0 Bank 7: 9c0000400000009f', 'CMCI-capable bank counts the error (STATUS[52:38] = 1)');
  t.match(s.log.find((l) => l.includes(' ADDR ')), /^mce: \[Hardware Error\]: TSC [0-9a-f]+ ADDR [0-9a-f]+000 MISC 8c $/);
  t.match(s.log.find((l) => l.includes('PROCESSOR')), /^mce: \[Hardware Error\]: PROCESSOR 0:50654 TIME \d+ SOCKET 0 APIC 0 microcode 2007006$/);
  t.equal(s.severity?.msg, 'Non signaled machine check');
  const n = run(`machine: { cpus: 2, mca: { cmci: false } }${WL}
steps:
  - corrected: { page: "v.buf[0]" }`);
  t.ok(step(n).log.some((l) => / TSC 0 ADDR /.test(l)), 'the poll timer (no MCP_TIMESTAMP) logs TSC 0');
});

t.test('validation: records against the machine are refused, not crashes', async (t) => {
  t.throws(() => parseCase(`machine: { cpus: 2, mca: { banks: 6 } }
steps:
  - mce: { records: "CPU 0 BANK 9 STATUS CORRECTED" }`, 'v.yaml'), /larger machine check bank 9 than supported on this cpu \(5\)/);
  // The step checks again at run time (records from files, templates): a StepError, not a crash.
  const w = new World(parseCase(`machine: { cpus: 2, offline-cpus: [1] }`, 'w.yaml').config);
  const obs = { index: 0, log: [], signals: [], trail: [], answers: {} };
  t.throws(() => stepAction('mce')!(w, { mce: { records: 'CPU 1 BANK 1 STATUS CORRECTED' } }, obs), { name: 'Error', message: /cpu 1 not online/ });
  t.throws(() => stepAction('mce')!(w, { mce: { records: 'CPU 0 BANK' } }, obs), /^mce: 1:/);
});

t.test('CEC: counts per pfn, offlines at the threshold, decays', async (t) => {
  const w = new World(parseCase(`machine: { cpus: 1 }${WL}`, 'w.yaml').config);
  const cec = new Cec(w.k, 3);
  t.equal(cec.addElem(0x1000), 0);
  t.equal(cec.addElem(0x2000), 0);
  t.equal(cec.addElem(0x1000), 0);
  t.equal(cec.addElem(0x1000), 1, 'third error on the pfn');
  t.ok(w.k.log.since(0).includes('RAS: Soft-offlining pfn: 0x1000'));
  t.same([...cec.counts()], [[0x2000, 1]], 'the offlined pfn left the array');
  t.equal(cec.addElem(0x7fffffff), 0, 'counted (a pfn beyond memory is only checked at the threshold)');
  t.equal(cec.pfnsPoisoned, 1);
  t.equal(mceWorld(w)?.machine.cpus.count, 1);
});

t.test('mcelog page threshold: leaky bucket per page', async (t) => {
  const offl: bigint[] = [];
  const p = new PageThreshold({ count: 2, period: 100 }, (a) => (offl.push(a), 0));
  t.notOk(p.account(0x5123n, 0));
  t.notOk(p.account(0x5fffn, 250), 'the first error leaked out');
  t.ok(p.account(0x5000n, 260));
  t.same(offl, [0x5000n]);
  t.notOk(p.account(0x5000n, 261));
  t.notOk(p.account(0x5000n, 262), 'an offlined page never triggers again');
  t.match(p.messages[0], /^Corrected memory errors on page 5000 exceed threshold 2/);
});

t.test('severity rows the handler cannot reach, and stable coverage names', async (t) => {
  // Row 1: mce_severity() is only called on VAL banks; row 7: IN_KERNEL_RECOV needs RIPV.
  const inv = mceSeverity({ status: 0n, mcgStatus: 0n, bank: 0 }, { ser: true, isExcp: true, context: 'IN_KERNEL' });
  t.same([inv.sev, inv.rowIndex, inv.msg], [MCE_NO_SEVERITY, 0, 'Invalid']);
  const r7 = mceSeverity({ status: 0xbd80000000000134n, mcgStatus: 6n, bank: 1 }, { ser: true, isExcp: true, context: 'IN_KERNEL_RECOV' });
  t.same([r7.sev, r7.rowIndex], [MCE_PANIC_SEVERITY, 6]);
  t.equal(severityRowName('current', 6), 'severity 07: In kernel and no restart IP');
  t.equal(new Set(SEVERITIES.map((_, i) => severityRowName('current', i))).size, SEVERITIES.length, 'names are unique');
  t.ok(mceUsableAddress({ status: 0xbd80000000000134n, misc: 0x8cn }));
  t.notOk(mceUsableAddress({ status: 0xbd80000000000134n, misc: 0x95n }), 'LSB 21');
  t.notOk(mceUsableAddress({ status: 0xbd80000000000134n, misc: 0x4cn }), 'linear address mode');
});

t.test('the sim reports severity coverage per case', async (t) => {
  const o = run(`machine: { cpus: 2 }
steps:
  - mce: { records: "CPU 0 BANK 2 STATUS UNCORRECTED SRAO 0x17a MCGSTATUS RIPV MCIP ADDR 0x1000 MISC 0x8c" }`);
  t.ok(o.coverage?.severities.includes('severity 10: Action optional: last level cache writeback error'));
});
