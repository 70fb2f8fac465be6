// Translation of cases into agent programs, and of agent reports into observations (no QEMU).
import t from 'tap';
import { parseCase } from '../../runner/case/load.js';
import { buildProgram, recordsUnsupported, unsupportedReason } from '../../runner/targets/qemu/program.js';
import { pagemapState, toObservation } from '../../runner/targets/qemu/report.js';
import { modinfoDepends } from '../../runner/targets/qemu/build.js';
import { profileOf } from '../../runner/targets/qemu/kernels.js';

const yaml = `
machine: { kernel: "6.1", cpus: 1 }
workload:
  processes:
    - name: victim
      mce-kill: late
      mappings: [{ name: buf, kind: anon, pages: 4 }]
steps:
  - corrupt-pfn: victim.buf[3]
    expect: { signals: [] }
  - access:
      process: victim
      page: victim.buf[3]
    expect:
      signals:
        - to: victim
          code: BUS_MCEERR_AR
          addr: victim.buf[3]
          lsb: 12
      data:
        victim.buf[3]: lost
`;

t.test('program for a late-kill corrupt-pfn case', async (t) => {
  const c = parseCase(yaml, 'x.yaml');
  const p = buildProgram(c, 'c0');
  const lines = p.text.trim().split('\n');
  t.equal(lines[0], 'case c0');
  t.ok(lines.includes('proc victim handler late victim -'));
  t.ok(lines.some((l) => /^pcall victim main map buf anon 0 - 0 4 - write \d+$/.test(l)));
  t.ok(lines.some((l) => /^ref victim\.buf\[3\] proc victim buf 3 0 \d+$/.test(l)));
  t.ok(lines.includes('step 0 1 30 - write /sys/kernel/debug/hwpoison/corrupt-pfn pfn@victim.buf[3]'));
  t.ok(lines.includes('step 1 1 30 victim.buf[3] call victim main access @victim.buf[3] read'));
  t.equal(lines.at(-1), 'end');
  t.equal(unsupportedReason(c, '6.1', 512), undefined);
  t.match(unsupportedReason(c, '6.12', 512), /booted kernel is 6.12/);
});

t.test('refusals', async (t) => {
  const c = parseCase('machine: { kernel: "6.12", nodes: 2 }\n', 'y.yaml');
  t.match(unsupportedReason(c, '6.12', 512), /NUMA/);
});

t.test('report → observation', async (t) => {
  const c = parseCase(yaml, 'x.yaml');
  const procs = { victim: { pid: 100, alive: true, threads: { main: 100 } } };
  const ref = { pfn: '0x299a', kpf: '17180413978', addr: '0x7f0000003000', pagemap: '0x408000000005335a', pid: 100 };
  const o = toObservation(
    c,
    {
      events: [
        { ev: 'setup', ok: true, log: [], signals: [], procs, refs: {} },
        { ev: 'step', i: 0, ret: 0, errno: 0, log: ['Injecting memory failure at pfn 0x299a'], signals: [], procs, refs: { 'victim.buf[3]': ref } },
        {
          ev: 'step', i: 1, ret: -14, errno: 14, log: ['MCE: Killing victim:100 due to hardware memory corruption fault at 7f0000003000'],
          signals: [{ proc: 'victim', pid: 100, tid: 100, signo: 7, code: 4, addr: '0x7f0000003000', lsb: 12, fatal: false }],
          procs, refs: { 'victim.buf[3]': { ...ref, data: 'lost' } },
        },
        { ev: 'end' },
      ],
    },
    '6.1.0-56-amd64',
    '6.1',
  );
  t.equal(o.target, 'qemu');
  t.equal(o.steps.length, 2);
  t.same(o.steps[0]!.signals, []);
  t.match(o.steps[1]!.signals[0], { proc: 'victim', signo: 'SIGBUS', code: 'BUS_MCEERR_AR', lsb: 12, addr: '0x7f0000003000', fatal: false });
  t.equal(o.steps[1]!.answers.pagemap?.['victim.buf[3]'], 'hwpoison');
  t.equal(o.steps[1]!.answers.data?.['victim.buf[3]'], 'lost');
  t.equal(o.steps[1]!.answers.refs?.['victim.buf[3]']?.phys, '0x299a000');
  t.equal(o.final.answers.processes?.['victim']?.alive, true);
});

t.test('helpers', async (t) => {
  t.equal(pagemapState('0x40800000000573bb', '6.12'), 'hwpoison');
  t.equal(pagemapState('0x40800000000573bb', '6.1'), 'swap');
  t.equal(pagemapState('0x818000000000299a', '6.1'), 'present');
  t.equal(pagemapState('0x0', '6.1'), 'none');
  t.same(modinfoDepends(Buffer.from('x\0license=GPL\0depends=jbd2,mbcache,crc16\0intree=Y\0')), ['jbd2', 'mbcache', 'crc16']);
  t.equal(profileOf('6.12.117+deb12-amd64'), '6.12');
  t.equal(profileOf('6.1.0-56-amd64'), '6.1');
  // Two SRARs on one CPU in one step (consecutive machine checks before task_work): not injectable.
  const srar = (a: string): string => `CPU 0 BANK 1 STATUS 0xbd80000000000134 MCGSTATUS RIPV EIPV MCIP ADDR ${a} MISC 0x8c`;
  t.match(recordsUnsupported(`${srar('0x1000')}\n${srar('0x2000')}`), /second machine check/);
  t.equal(recordsUnsupported(srar('0x1000')), undefined);
});
