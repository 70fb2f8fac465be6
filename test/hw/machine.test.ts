import t from 'tap';
import { Machine, PROFILE_NAMES, hardwareMcgStatus, profileConfig } from '../../tsrc/hw/machine.js';
import { Cpus, KERNEL_CS, USER_CS } from '../../tsrc/hw/cpu.js';
import { PhysMem, pfnToPhys, physToPfn } from '../../tsrc/hw/phys-mem.js';
import * as r from '../../tsrc/hw/msr.js';

const V = r.MCI_STATUS_VAL, E = r.MCI_STATUS_EN, U = r.MCI_STATUS_UC, S = r.MCI_STATUS_S, A = r.MCI_STATUS_AR, P = r.MCI_STATUS_PCC;
const SRAR = V | E | U | S | A | r.MCI_STATUS_ADDRV | r.MCI_STATUS_MISCV | 0x134n;
const SRAO = V | E | U | S | 0xc0n;
const CE = V | E | 0x9fn;
const { MCG_STATUS_RIPV: RIPV, MCG_STATUS_EIPV: EIPV, MCG_STATUS_MCIP: MCIP, MCG_STATUS_LMCES: LMCES } = r;

t.test('cpu topology', async (t) => {
  const c = new Cpus({ sockets: 2, coresPerSocket: 3, threadsPerCore: 2 });
  t.equal(c.count, 12);
  t.match(c.get(7), { socket: 1, core: 0, thread: 1 });
  t.same(c.siblings(7), [6, 7]);
  t.same(c.cpusOfSocket(1), [6, 7, 8, 9, 10, 11]);
  t.equal(c.get(7).apicId, (1 << 2 << 1) | 1, 'package/core/thread packed apic id');
  c.setOnline(3, false);
  t.notOk(c.isOnline(3));
  t.notOk(c.isOnline(12));
  t.equal(c.onlineIds().length, 11);
  c.run(1, 'user', { pid: 42, comm: 'victim' }, 0x400123n);
  t.equal(c.csOf(1), USER_CS);
  t.equal(c.csOf(2), KERNEL_CS);
  t.throws(() => c.run(1, 'user'));
  t.throws(() => c.run(3, 'kernel'), /offline/);
  const one = new Cpus({ sockets: 1, coresPerSocket: 1, threadsPerCore: 1 });
  t.throws(() => one.setOnline(0, false), /last online/);
  t.throws(() => new Cpus({ sockets: 0, coresPerSocket: 1, threadsPerCore: 1 }));
});

t.test('physical memory layout', async (t) => {
  const GiB = 1n << 30n;
  const m = new PhysMem({ memoryBytes: 8n * GiB, nodes: 2, holes: [{ start: 3n * GiB, end: 4n * GiB }], reserved: [{ start: 0n, end: 1n << 20n }] });
  t.equal(m.end, 9n * GiB, 'the hole pushes RAM up');
  t.equal(m.maxPfn, Number(9n * GiB / 4096n));
  t.equal(m.kindOf(0x1000n), 'reserved');
  t.equal(m.kindOf(2n * GiB), 'ram');
  t.equal(m.kindOf(3n * GiB + 5n), 'hole');
  t.equal(m.kindOf(9n * GiB), 'beyond');
  t.ok(m.isValidPfn(1));
  t.ok(m.isReservedPfn(1));
  t.notOk(m.isValidPfn(physToPfn(3n * GiB)));
  t.notOk(m.isValidPfn(m.maxPfn));
  t.notOk(m.isValidPfn(-1));
  t.equal(m.nodeOfAddr(GiB), 0);
  t.equal(m.nodeOfAddr(8n * GiB), 1);
  t.equal(m.nodeOfPfn(physToPfn(3n * GiB)), undefined);
  t.same(m.ramRanges(), [{ start: 0n, end: 3n * GiB }, { start: 4n * GiB, end: 9n * GiB }]);
  t.equal(pfnToPhys(0x1234), 0x1234000n);
  const explicit = new PhysMem({ memoryBytes: 4n * GiB, nodes: [{ start: 0, end: 2n * GiB }, { start: 2n * GiB, end: 4n * GiB }] });
  t.equal(explicit.nodeOfAddr(3n * GiB), 1);
  t.throws(() => new PhysMem({ memoryBytes: 4097 }));
  t.throws(() => new PhysMem({ memoryBytes: 4096n * 4n, holes: [{ start: 0, end: 8192 }, { start: 4096, end: 12288 }] }), /overlap/);
  t.throws(() => new PhysMem({ memoryBytes: 8192, reserved: [{ start: 0, end: 1n << 40n }] }), /beyond/);
});

t.test('a 4 TiB machine is O(1) to build: no per-page state', async (t) => {
  const TiB = 1n << 40n;
  const m = new Machine(profileConfig('intel-ser', { memoryBytes: 4n * TiB, nodes: 8 }));
  t.equal(m.mem.ramBytes, 4n * TiB);
  t.ok(m.mem.maxPfn > 2 ** 30);
  t.equal(m.mem.nodes.length, 8);
  t.equal(m.mem.nodeOfAddr(4n * TiB), 7);
  t.ok(m.mem.isValidPfn(m.mem.maxPfn - 1));
  // Structure size does not depend on memory size: count own enumerable values.
  const size = (x: object): number => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)).length;
  const small = new Machine(profileConfig('intel-ser', { memoryBytes: 64n << 20n, holes: [], nodes: 8 }));
  t.ok(Math.abs(size(m.mem) - size(small.mem)) < 200, 'layout representation is independent of RAM size');
});

t.test('profiles', async (t) => {
  for (const p of PROFILE_NAMES) {
    const m = Machine.fromProfile(p);
    const cap = r.decodeMcgCap(m.mca.mcgCap);
    t.equal(cap.ser, p.startsWith('intel-ser'), `${p} ser`);
    t.equal(cap.cmci, !p.endsWith('nocmci'), `${p} cmci`);
    t.equal(cap.lmce, p === 'intel-ser' || p === 'intel-ser-nocmci', `${p} lmce`);
    t.equal(m.cpus.count, 4);
  }
  const m = Machine.fromProfile('intel-ser', { sockets: 4, mca: { banks: 22, ser: true, cmci: false, lmce: false, tes: false } });
  t.equal(m.cpus.count, 8);
  t.equal(m.mca.bankCount, 22);
});

t.test('broadcast #MC from one CPU', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  m.cpus.run(2, 'user', { pid: 100, comm: 'einj_mem_uc' }, 0x401234n);
  const ev = m.raise([{ cpu: 2, bank: 1, status: SRAR, addr: 0x12345000n, misc: 0x8cn }]);
  t.equal(ev.scope, 'broadcast');
  t.same(ev.origins, [2]);
  t.same(ev.cpus.map((c) => c.cpu), [0, 1, 2, 3]);
  t.same(ev.missing, []);
  const me = ev.cpus[2]!;
  t.match(me, { delivery: 'exception', hasRecord: true, context: 'user', cs: USER_CS, ip: 0x401234n, shutdown: false, validBanks: [1] });
  t.equal(me.mcgStatus, RIPV | EIPV | MCIP, 'SRAR data load: reporting CPU RIPV=EIPV=1');
  t.equal(ev.cpus[0]!.mcgStatus, RIPV | MCIP, 'bystanders can restart');
  t.equal(ev.cpus[0]!.hasRecord, false);
  t.equal(ev.cpus[0]!.cs, KERNEL_CS);
  t.equal(m.mca.bank(2, 1).addr, 0x12345000n);
  t.equal(ev.posts[0]!.result.signal, 'mce');
  // A second #MC before the handler cleared MCIP shuts the CPU down.
  const ev2 = m.raise([{ cpu: 2, bank: 2, status: SRAO }]);
  t.ok(ev2.cpus.every((c) => c.shutdown));
  for (const c of [0, 1, 2, 3]) m.mca.setMcgStatus(c, 0n);
  t.ok(m.raise([{ cpu: 0, bank: 3, status: SRAO }]).cpus.every((c) => !c.shutdown));
});

t.test('a shared bank error is visible to the whole socket', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const ev = m.raise([{ cpu: 0, bank: 13, status: SRAO, addr: 0x5000n, misc: 0x8cn }]);
  t.same(ev.cpus.map((c) => c.validBanks), [[13], [13], [], []]);
});

t.test('LMCE: only the local CPU, LMCES set', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const ev = m.raise([{ cpu: 3, bank: 1, status: SRAR }], { scope: 'local' });
  t.equal(ev.scope, 'local');
  t.same(ev.cpus.map((c) => c.cpu), [3]);
  t.equal(ev.cpus[0]!.mcgStatus, RIPV | EIPV | MCIP | LMCES);
  t.same(ev.missing, []);
  // Without LMCE support the hardware broadcasts instead.
  const n = Machine.fromProfile('intel-ser-nolmce');
  const ev2 = n.raise([{ cpu: 3, bank: 1, status: SRAR }], { scope: 'local' });
  t.equal(ev2.scope, 'broadcast');
  t.equal(ev2.cpus.length, 4);
  t.equal(ev2.cpus[3]!.mcgStatus & LMCES, 0n);
});

t.test('poll and CMCI delivery', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const ev = m.raise([{ cpu: 1, bank: 2, status: CE, addr: 0x1000n }], { delivery: 'poll' });
  t.equal(ev.scope, 'targeted');
  t.same(ev.cpus.map((c) => [c.cpu, c.delivery, c.mcgStatus]), [[1, 'poll', 0n]]);
  t.same(ev.missing, []);
  const ev2 = m.raise([{ cpu: 0, bank: 4, status: CE }], { delivery: 'cmci' });
  t.same(ev2.cpus.map((c) => [c.cpu, c.delivery]), [[0, 'cmci']]);
  t.equal(ev2.posts[0]!.result.signal, 'cmci');
  const n = Machine.fromProfile('intel-ser-nocmci');
  t.equal(n.raise([{ cpu: 0, bank: 4, status: CE }], { delivery: 'cmci' }).cpus[0]!.delivery, 'poll', 'no CMCI: waits for the poll timer');
});

t.test('HOLD: records on several CPUs raised at once', async (t) => {
  const m = Machine.fromProfile('intel-noser');
  m.hold({ cpu: 1, bank: 1, status: CE, mcgStatus: RIPV | MCIP, delivery: 'exception' });
  m.hold({ cpu: 3, bank: 0, status: CE });
  m.hold({ cpu: 3, bank: 2, status: CE | 1n, delivery: 'poll' });
  t.equal(m.heldRecords().length, 2, 'one held record per CPU');
  const ev = m.raise([{ cpu: 0, bank: 2, status: V | E | U | r.MCI_STATUS_OVER, mcgStatus: RIPV | EIPV | MCIP, cs: KERNEL_CS, ip: 0xdeadbaben }]);
  t.same(ev.origins, [1, 3, 0]);
  t.same(ev.cpus.map((c) => [c.cpu, c.delivery, c.hasRecord]), [[0, 'exception', true], [1, 'exception', true], [2, 'exception', false], [3, 'exception', true]]);
  t.equal(ev.cpus[1]!.mcgStatus, RIPV | MCIP);
  t.equal(ev.cpus[0]!.ip, 0xdeadbaben);
  t.same(ev.cpus[3]!.validBanks, [2]);
  t.equal(m.heldRecords().length, 0, 'held records are consumed');
});

t.test('targeted (NOBROADCAST) and a CPU not answering the rendezvous', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const ev = m.raise([{ cpu: 0, bank: 4, status: V | E | U | P | S, mcgStatus: MCIP }], { scope: 'targeted', write: 'raw' });
  t.same(ev.cpus.map((c) => c.cpu), [0]);
  t.same(ev.missing, [1, 2, 3]);
  t.equal(ev.cpus[0]!.mcgStatus, MCIP);
  t.same(ev.posts, [], 'raw mode posts nothing through the overwrite logic');
  const n = Machine.fromProfile('intel-ser');
  n.setResponding(2, false);
  t.notOk(n.isResponding(2));
  const ev2 = n.raise([{ cpu: 0, bank: 4, status: SRAO }]);
  t.same(ev2.cpus.map((c) => c.cpu), [0, 1, 3]);
  t.same(ev2.missing, [2]);
  n.setResponding(2, true);
  t.ok(n.isResponding(2));
});

t.test('raw mode: MCG_STATUS defaults to 0, context override (IN_IRQ)', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const ev = m.raise([{ cpu: 0, bank: 1, status: V | E | U | S, context: 'irq' }], { write: 'raw', scope: 'targeted' });
  t.equal(ev.cpus[0]!.mcgStatus, 0n);
  t.equal(ev.cpus[0]!.context, 'irq');
  t.throws(() => m.raise([{ cpu: 9, bank: 0, status: CE }]), /does not exist/);
  t.throws(() => m.raise([{ cpu: 0, bank: 20, status: CE }]), /bank 20/);
  m.cpus.setOnline(1, false);
  t.throws(() => m.hold({ cpu: 1, bank: 0, status: CE }), /not online/);
});

t.test('hardwareMcgStatus', async (t) => {
  t.equal(hardwareMcgStatus([], true), RIPV | MCIP);
  t.equal(hardwareMcgStatus([V | E | U | P], true), MCIP);
  t.equal(hardwareMcgStatus([V | E | U | S | A | 0x150n], true), EIPV | MCIP, 'instruction fetch: no restart IP');
  t.equal(hardwareMcgStatus([SRAO], true), RIPV | MCIP);
  t.equal(hardwareMcgStatus([V | E | U], false), RIPV | EIPV | MCIP);
  t.equal(hardwareMcgStatus([CE], false), RIPV | MCIP);
});
