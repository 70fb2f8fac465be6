import t from 'tap';
import { Cpus } from '../../tsrc/hw/cpu.js';
import { Mca } from '../../tsrc/hw/mca.js';
import * as r from '../../tsrc/hw/msr.js';

const V = r.MCI_STATUS_VAL, E = r.MCI_STATUS_EN, U = r.MCI_STATUS_UC, S = r.MCI_STATUS_S, A = r.MCI_STATUS_AR, P = r.MCI_STATUS_PCC, O = r.MCI_STATUS_OVER;
const CE = V | E | 0x9fn, UCNA = V | E | U | 0x9fn, SRAO = V | E | U | S | 0xc0n, SRAR = V | E | U | S | A | 0x134n, FATAL = V | E | U | P | 0x5n;
const CEC = r.MCI_STATUS_CEC_MASK;

function mk(ser = true, cmci = true) {
  const cpus = new Cpus({ sockets: 2, coresPerSocket: 2, threadsPerCore: 1 });
  return new Mca({ banks: 10, ser, cmci, lmce: ser, tes: true, sharedBanks: [8, 9] }, cpus);
}

t.test('MCG_CAP reflects the config', async (t) => {
  const cap = r.decodeMcgCap(mk().mcgCap);
  t.match(cap, { banks: 10, ser: true, cmci: true, lmce: true, tes: true, ctlP: true });
  t.match(r.decodeMcgCap(mk(false, false).mcgCap), { ser: false, cmci: false, lmce: false });
});

t.test('shared banks are one object per socket', async (t) => {
  const m = mk();
  t.equal(m.bank(0, 8), m.bank(1, 8));
  t.not(m.bank(0, 8), m.bank(2, 8));
  t.not(m.bank(0, 1), m.bank(1, 1));
  t.ok(m.isShared(9));
  m.post(1, 9, { status: SRAO, addr: 0x1000n });
  t.same(m.validBanks(0), [9]);
  t.same(m.validBanks(2), []);
  t.throws(() => m.bank(0, 10));
  t.throws(() => m.bank(4, 0));
});

interface Case { name: string; first: bigint; second: bigint; ser?: boolean; kept: 'first' | 'second'; expect: bigint }
const cases: Case[] = [
  { name: 'CE then CE: second', first: CE | 1n, second: CE | 2n, kept: 'second', expect: CE | 2n },
  { name: 'CE then UCNA: UC overwrites CE', first: CE, second: UCNA, kept: 'second', expect: UCNA },
  { name: 'CE then SRAR', first: CE, second: SRAR, kept: 'second', expect: SRAR },
  { name: 'SRAO then CE: UCR kept over newer CE', first: SRAO, second: CE, kept: 'first', expect: SRAO },
  { name: 'UCNA then UCNA: first', first: UCNA | 1n, second: UCNA | 2n, kept: 'first', expect: UCNA | 1n },
  { name: 'UCNA then SRAO: first, S sticky', first: UCNA, second: SRAO, kept: 'first', expect: UCNA | S },
  { name: 'UCNA then SRAR: first, S and AR sticky', first: UCNA, second: SRAR, kept: 'first', expect: UCNA | S | A },
  { name: 'SRAO then SRAR: first, AR sticky', first: SRAO, second: SRAR, kept: 'first', expect: SRAO | A },
  { name: 'SRAR then UCNA: first', first: SRAR, second: UCNA, kept: 'first', expect: SRAR },
  { name: 'SRAR then SRAR: first', first: SRAR | 0x1000n, second: SRAR, kept: 'first', expect: SRAR | 0x1000n },
  { name: 'UCR then UC(PCC): second, PCC', first: SRAO, second: FATAL, kept: 'second', expect: FATAL | S },
  { name: 'UC(PCC) then UCR: first', first: FATAL, second: SRAR, kept: 'first', expect: FATAL | S | A },
  { name: 'disabled then enabled CE: enabled wins', first: V | 0x1n, second: CE, kept: 'second', expect: CE },
  { name: 'CE then disabled: CE kept', first: CE, second: V | 0x1n, kept: 'first', expect: CE },
  { name: 'non-SER UC then UC: first', first: V | E | U | 0x1n, second: V | E | U | 0x2n, ser: false, kept: 'first', expect: V | E | U | 0x1n },
  { name: 'non-SER CE then UC: second', first: CE, second: V | E | U | 0x2n, ser: false, kept: 'second', expect: V | E | U | 0x2n },
  { name: 'non-SER UC then CE: first', first: V | E | U | 0x2n, second: CE, ser: false, kept: 'first', expect: V | E | U | 0x2n },
  { name: 'yellow CE then green CE: first, still yellow', first: CE | r.MCI_STATUS_TES_YELLOW | 1n, second: CE | r.MCI_STATUS_TES_GREEN | 2n, kept: 'first', expect: CE | r.MCI_STATUS_TES_YELLOW | 1n },
  { name: 'green CE then yellow CE: second', first: CE | r.MCI_STATUS_TES_GREEN | 1n, second: CE | r.MCI_STATUS_TES_YELLOW | 2n, kept: 'second', expect: CE | r.MCI_STATUS_TES_YELLOW | 2n },
];

t.test('overwrite rules (SDM tables 15-2 / 15-7)', async (t) => {
  for (const c of cases) {
    const m = mk(c.ser ?? true);
    const a = m.post(0, 2, { status: c.first, addr: 0x1111n, misc: 0x8cn });
    t.equal(a.kept, 'logged', `${c.name}: first logged`);
    t.equal(a.overflow, false);
    const b = m.post(0, 2, { status: c.second, addr: 0x2222n, misc: 0x86n });
    t.equal(b.kept, c.kept, `${c.name}: kept`);
    t.equal(b.overflow, true, `${c.name}: OVER`);
    const bank = m.bank(0, 2);
    t.equal(bank.status & ~CEC, c.expect | O, `${c.name}: status`);
    t.equal(bank.addr, c.kept === 'first' ? 0x1111n : 0x2222n, `${c.name}: addr from the kept error`);
    t.equal(bank.misc, c.kept === 'first' ? 0x8cn : 0x86n, `${c.name}: misc from the kept error`);
  }
});

t.test('post sets VAL and clears EN when MCi_CTL disables reporting', async (t) => {
  const m = mk();
  m.bank(0, 1).ctl = 0n;
  const res = m.post(0, 1, { status: E | U | S });
  t.equal(m.bank(0, 1).status & (V | E), V);
  t.equal(res.signal, 'none');
  t.equal(res.errorClass, 'disabled');
});

t.test('corrected error count and CMCI threshold', async (t) => {
  const m = mk();
  const b = m.bank(1, 3);
  // Linux programs the threshold through MCi_CTL2; make it 3.
  m.wrmsr(1, r.msrMcCtl2(3), r.MCI_CTL2_CMCI_EN | 3n);
  t.equal(b.ctl2, r.MCI_CTL2_CMCI_EN | 3n);
  const sig = [1, 2, 3, 4].map(() => m.post(1, 3, { status: CE }).signal);
  t.same(sig, ['none', 'none', 'cmci', 'none'], 'CMCI exactly when the count reaches the threshold');
  t.equal(r.statusCec(b.status), 4);
  // UC overwrites, count unchanged.
  m.post(1, 3, { status: SRAR });
  t.equal(r.statusCec(b.status), 4);
  b.clear();
  t.equal(b.status, 0n);
  m.post(1, 3, { status: CE });
  t.equal(r.statusCec(b.status), 1, 'count restarts after clearing');
  // CMCI disabled in CTL2: no signal.
  m.wrmsr(1, r.msrMcCtl2(4), 1n);
  t.equal(m.post(1, 4, { status: CE }).signal, 'none');
  // No CMCI on the part: count field untouched, no signal.
  const n = mk(true, false);
  const res = n.post(0, 0, { status: CE });
  t.equal(res.signal, 'none');
  t.equal(r.statusCec(n.bank(0, 0).status), 0);
});

t.test('signals: #MC for signalled UC, CMCI for UCNA, #MC for any non-SER UC', async (t) => {
  const m = mk();
  t.equal(m.post(0, 0, { status: SRAO }).signal, 'mce');
  t.equal(m.post(0, 1, { status: SRAR }).signal, 'mce');
  t.equal(m.post(0, 2, { status: FATAL }).signal, 'mce');
  t.equal(m.post(0, 3, { status: UCNA }).signal, 'cmci');
  t.equal(m.post(0, 4, { status: CE }).signal, 'cmci');
  const n = mk(false);
  t.equal(n.post(0, 0, { status: V | E | U }).signal, 'mce');
});

t.test('raw write keeps values verbatim', async (t) => {
  const m = mk();
  m.post(0, 2, { status: SRAR });
  m.write(0, 2, { status: CE, addr: 5n });
  t.equal(m.bank(0, 2).status, CE);
  t.equal(m.bank(0, 2).addr, 5n);
  t.equal(m.bank(0, 2).misc, 0n);
});

t.test('rdmsr / wrmsr', async (t) => {
  const m = mk();
  t.equal(m.rdmsr(0, r.MSR_IA32_MCG_CAP), m.mcgCap);
  m.wrmsr(2, r.MSR_IA32_MCG_STATUS, 7n);
  t.equal(m.rdmsr(2, r.MSR_IA32_MCG_STATUS), 7n);
  t.equal(m.mcgStatus(2), 7n);
  m.post(0, 5, { status: SRAO, addr: 0xabc000n, misc: 0x8cn });
  t.equal(m.rdmsr(0, r.msrMcStatus(5)), SRAO);
  t.equal(m.rdmsr(0, r.msrMcAddr(5)), 0xabc000n);
  t.equal(m.rdmsr(0, r.msrMcMisc(5)), 0x8cn);
  t.equal(m.rdmsr(0, r.msrMcCtl(5)), r.U64_MASK);
  m.wrmsr(0, r.msrMcStatus(5), 0n);
  t.equal(m.bank(0, 5).valid, false);
  t.throws(() => m.wrmsr(0, r.MSR_IA32_MCG_CAP, 0n), /#GP/);
  t.throws(() => m.rdmsr(0, r.msrMcStatus(10)), /#GP/);
  t.ok(m.lmceEnabled(0));
  m.wrmsr(0, 0x4d0, 0n);
  t.notOk(m.lmceEnabled(0));
  t.throws(() => mk(false).wrmsr(0, 0x4d0, 1n), /#GP/, 'no MCG_EXT_CTL without LMCE');
});
