// Real boots: one small case per kernel (6.1 and 6.12) under QEMU. Skips when
// `npm run qemu:setup` has not been run (no kernels / no qemu-system-x86_64).
import t from 'tap';
import { qemuUnavailable } from '../../runner/targets/index.js';
import { parseCase } from '../../runner/case/load.js';
import { createQemuTarget } from '../../runner/targets/qemu/index.js';
import { defaultCacheDir, findKernels } from '../../runner/targets/qemu/kernels.js';

// Unset up (no qemu-system-x86_64, no kernels) or HWPSIM_QEMU=off: the real-boot tests skip.
const unavailable = qemuUnavailable();
const qemuPresent = (): boolean => unavailable === undefined;

const kernels = findKernels(defaultCacheDir());
const ctx = { timeoutMs: 60_000, checkInvariants: false, seed: 1 };

const caseFor = (kernel: string): string => `
name: late-kill dirty anon page
machine: { kernel: "${kernel}", cpus: 1 }
workload:
  processes:
    - name: victim
      mce-kill: late
      mappings:
        - { name: buf, kind: anon, pages: 4 }
steps:
  - corrupt-pfn: victim.buf[3]
  - access:
      process: victim
      page: victim.buf[3]
expect:
  data:
    victim.buf[2]: intact
`;

for (const profile of ['6.1', '6.12']) {
  t.test(`corrupt-pfn then touch on ${profile}`, async (t) => {
    if (!qemuPresent()) return t.skip(unavailable ?? '');
    if (!kernels.some((k) => k.profile === profile)) return t.skip(`no ${profile} kernel in .qemu-cache (npm run qemu:setup)`);
    const target = createQemuTarget({ log: (m) => t.comment(m) });
    const c = parseCase(caseFor(profile), `qemu-${profile}.yaml`);
    t.equal(target.cannotRun(c, ctx), undefined);
    const t0 = Date.now();
    const o = await target.run(c, ctx);
    t.comment(`boot + case: ${Date.now() - t0} ms on ${o.kernel}`);
    await target.close();
    t.match(o.kernel, new RegExp(`^${profile.replace('.', '\\.')}\\.`));
    t.equal(o.setup.error, undefined);
    const [inject, touch] = o.steps;
    t.equal(inject?.ret, 0, 'corrupt-pfn write succeeds');
    t.same(inject?.signals, [], 'no signal at injection (late kill)');
    const pfn = inject?.answers.refs?.['victim.buf[3]']?.pfn;
    t.match(pfn, /^0x[0-9a-f]+$/);
    t.ok(inject?.log.includes(`Injecting memory failure at pfn ${pfn}`), 'injection line');
    t.ok(inject?.log.includes(`Memory failure: ${pfn}: recovery action for dirty LRU page: Recovered`), 'result line');
    t.equal(inject?.answers.pagemap?.['victim.buf[3]'], 'hwpoison');
    t.equal(inject?.answers.meminfo?.['HardwareCorrupted'], 4);
    const kpf = BigInt(inject?.answers.kpageflags?.['victim.buf[3]'] ?? '0');
    t.equal((kpf >> 19n) & 1n, 1n, 'KPF_HWPOISON');
    const addr = touch?.answers.refs?.['victim.buf[3]']?.addr;
    t.equal(touch?.signals.length, 1);
    t.match(touch?.signals[0], { proc: 'victim', signo: 'SIGBUS', code: 'BUS_MCEERR_AR', lsb: 12, addr, fatal: false });
    t.ok(touch?.log.some((l) => l.startsWith('MCE: Killing victim:') && l.endsWith(`fault at ${addr?.slice(2)}`)), 'MCE: Killing line');
    t.equal(o.final.answers.processes?.['victim']?.alive, true);
  });
}

t.test('SRAR machine check through the QEMU monitor (6.12)', async (t) => {
  if (!qemuPresent()) return t.skip(unavailable ?? '');
  if (!kernels.some((k) => k.profile === '6.12')) return t.skip('no 6.12 kernel in .qemu-cache (npm run qemu:setup)');
  const target = createQemuTarget({ log: (m) => t.comment(m) });
  const c = parseCase(
    `
machine: { kernel: "6.12", cpus: 1 }
workload:
  processes:
    - { name: v, mappings: [{ name: buf, kind: anon, pages: 2 }] }
steps:
  - mce:
      records: "CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS 7 MISC 0x8c"
      process: v
      page: v.buf[1]
  - unpoison-pfn: v.buf[1]
expect:
  data:
    v.buf[0]: intact
`,
    'srar.yaml',
  );
  t.equal(target.cannotRun(c, ctx), undefined);
  const o = await target.run(c, ctx);
  const [mce, unpoison] = o.steps;
  const pfn = mce?.answers.refs?.['v.buf[1]']?.pfn ?? '';
  const phys = mce?.answers.refs?.['v.buf[1]']?.phys ?? '';
  t.ok(mce?.log.includes(`mce: Uncorrected hardware memory error in user-access at ${phys.slice(2)}`), 'SRAR user-access line');
  t.ok(mce?.log.includes(`Memory failure: ${pfn}: recovery action for dirty LRU page: Recovered`), 'result line');
  t.match(mce?.signals, [{ proc: 'v', code: 'BUS_MCEERR_AR', lsb: 12, addr: mce?.answers.refs?.['v.buf[1]']?.addr }]);
  t.equal(unpoison?.ret, -95, 'unpoison refused after a hardware memory failure');
  t.ok(unpoison?.log.includes(`Unpoison: ${pfn}: disabled after HW memory failure`));
  t.equal(o.final.answers.data?.['v.buf[0]'], 'intact');
});
