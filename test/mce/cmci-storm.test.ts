// CMCI storms and the poll timer: intel.c's cmci_storm_detect() (≤6.7) and threshold.c's
// mce_track_storm() (≥6.8), MCi_CTL2 during a storm, and mce_timer_fn()'s interval.
import t from 'tap';
import { parseCase } from '../../runner/case/load.js';
import { World } from '../../runner/targets/sim/world.js';
import { mceWorld } from '../../runner/targets/sim/mce-extensions.js';
import { stepAction } from '../../runner/targets/sim/extensions.js';
import { HZ } from '../../tsrc/kernel/arch/x86/kernel/cpu/mce/intel.js';

const WL = `
workload:
  processes:
    - name: app
      mappings:
        - { name: buf, kind: anon, pages: 2 }`;

const world = (kernel: string, machine = 'cpus: 2') => {
  const w = new World(parseCase(`machine: { kernel: "${kernel}", ${machine} }${WL}`, 'w.yaml').config);
  return { w, st: mceWorld(w)! };
};
const obs = () => ({ index: 0, log: [], signals: [], trail: [], answers: {} });
const corrected = (w: World, c: { page?: string; count?: number; interval?: number; cpu?: number; bank?: number }) =>
  stepAction('corrected')!(w, { corrected: { page: 'app.buf[0]', ...c } }, obs());
const wait = (w: World, s: number) => stepAction('wait')!(w, { wait: s }, obs());
const CTL2 = (bank: number) => 0x280 + bank;
const storms = (w: World) => w.k.log.since(0).filter((l) => l.includes('CMCI storm'));

t.test('≤6.7: the 16th CMCI within a second clears CMCI_EN on the CPU; 300 empty polls re-enable it', async (t) => {
  const { w, st } = world('6.1');
  corrected(w, { count: 16, interval: 0.01 });
  t.equal(st.mc.intel.state(0), 'CMCI_STORM_ACTIVE');
  t.equal(st.machine.mca.rdmsr(0, CTL2(3)) & (1n << 30n), 0n, 'CMCI_EN cleared on every owned bank');
  t.equal(st.mc.logged.length, 15, 'the storm CMCI is not polled');
  t.ok(st.machine.mca.bank(0, 7).valid, 'its error waits in the bank');
  t.equal(st.mc.timers.get(0)!.nextInterval, HZ, 'mce_timer_kick(CMCI_STORM_INTERVAL)');
  wait(w, 1);
  t.equal(st.mc.logged.length, 16, 'the storm poll logs it');
  wait(w, 300);
  t.equal(st.mc.intel.state(0), 'CMCI_STORM_NONE');
  t.not(st.machine.mca.rdmsr(0, CTL2(3)) & (1n << 30n), 0n, 'CMCI_EN back');
  t.equal(st.mc.timers.get(0)!.nextInterval, 30 * HZ, 'CMCI_POLL_INTERVAL');
  t.same(storms(w), ['mce: CMCI storm detected: switching to poll mode', 'mce: CMCI storm subsided: switching to interrupt mode']);
});

t.test('≤6.7: storms on two CPUs print one detected and one subsided line (cmci_storm_on_cpus)', async (t) => {
  const { w, st } = world('6.1');
  corrected(w, { cpu: 0, bank: 1, count: 16, interval: 0.01 });
  corrected(w, { cpu: 1, bank: 1, count: 16, interval: 0.01 });
  t.equal(st.mc.intel.stormOnCpus, 2);
  // CPU 1 keeps seeing errors for a while: CPU 0 subsides first and waits in SUBSIDED.
  wait(w, 200);
  corrected(w, { cpu: 1, bank: 1 });
  wait(w, 110);
  t.equal(st.mc.intel.state(0), 'CMCI_STORM_SUBSIDED');
  t.equal(st.machine.mca.rdmsr(0, CTL2(1)) & (1n << 30n), 0n, 'CPU 0 still polls');
  // CPU 1 subsides at ~501 s and switches back at once; CPU 0, polling every CMCI_POLL_INTERVAL
  // in SUBSIDED, follows at its next tick.
  wait(w, 195);
  t.equal(st.mc.intel.state(1), 'CMCI_STORM_NONE');
  t.equal(st.mc.intel.state(0), 'CMCI_STORM_SUBSIDED');
  wait(w, 30);
  t.equal(st.mc.intel.state(0), 'CMCI_STORM_NONE');
  t.equal(st.mc.intel.state(1), 'CMCI_STORM_NONE');
  t.same(storms(w), ['mce: CMCI storm detected: switching to poll mode', 'mce: CMCI storm subsided: switching to interrupt mode']);
});

t.test('≥6.8: the fifth error in a bank history is a storm; CMCI_EN stays, the threshold is 32749', async (t) => {
  const { w, st } = world('6.12');
  corrected(w, { count: 4, interval: 0.01 });
  t.equal(st.mc.storm.history(0, 7), 0b1111n);
  t.equal(st.mc.storm.history(0, 3), 0n, 'banks without an error shift in zeros');
  corrected(w, {});
  t.same(st.mc.storm.stormBanks(0), [7]);
  t.ok(st.mc.storm.pollMode(0));
  const ctl2 = st.machine.mca.rdmsr(0, CTL2(7));
  t.equal(ctl2 & 0x7fffn, 32749n);
  t.not(ctl2 & (1n << 30n), 0n, 'CMCI_EN kept');
  t.equal(st.machine.mca.rdmsr(0, CTL2(6)) & 0x7fffn, 1n, 'other banks keep threshold 1');
  t.equal(st.mc.logged.length, 5, 'the storm error is logged');
  t.same(storms(w), ['CPU0 BANK7 CMCI storm detected']);
  wait(w, 31);
  t.same(st.mc.storm.stormBanks(0), []);
  t.equal(st.machine.mca.rdmsr(0, CTL2(7)) & 0x7fffn, 1n, 'threshold restored');
  t.equal(st.mc.timers.get(0)!.nextInterval, 300 * HZ);
  t.same(storms(w), ['CPU0 BANK7 CMCI storm detected', 'CPU0 BANK7 CMCI storm subsided']);
});

t.test('≥6.8: errors more than 64 s apart never build a storm; mce=no_cmci tracks nothing', async (t) => {
  const { w, st } = world('6.18');
  corrected(w, { count: 10, interval: 64 });
  t.same(storms(w), []);
  t.equal(st.mc.storm.history(0, 7), 1n);
  const nc = world('6.18', 'cpus: 2, mca: { cmci: false }');
  corrected(nc.w, { count: 10, interval: 0.01 });
  t.same(storms(nc.w), []);
  t.equal(nc.st.mc.logged.length, 10);
});

t.test('poll timer: check_interval, doubling; 6.13+ halves after a poll that logged', async (t) => {
  for (const [kernel, next] of [['6.12', 300], ['6.18', 150]] as const) {
    // No CMCI: every bank is a poll bank; an error posted without a signal waits for the timer.
    const { w, st } = world(kernel, 'cpus: 1, mca: { cmci: false }');
    t.equal(st.mc.timers.get(0)!.expires, 300 * HZ, `${kernel}: first poll at check_interval`);
    st.machine.mca.post(0, 2, { status: 0x9c0000000000009fn, addr: 0x1000n, misc: 0x8cn });
    wait(w, 299);
    t.equal(st.mc.logged.length, 0, `${kernel}: not yet polled`);
    wait(w, 1);
    t.equal(st.mc.logged.length, 1, `${kernel}: the timer poll logs it`);
    t.equal(st.mc.timers.get(0)!.nextInterval, next * HZ, `${kernel}: next interval`);
    wait(w, next);
    t.equal(st.mc.timers.get(0)!.nextInterval, 300 * HZ, `${kernel}: doubled back up to check_interval`);
  }
});
