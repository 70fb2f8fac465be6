import t from 'tap';
import * as m from '../../tsrc/hw/msr.js';

t.test('MCG_CAP fields', async (t) => {
  const v = m.encodeMcgCap({ banks: 20, ctlP: true, extP: true, cmci: true, tes: true, extCnt: 3, ser: true, emc: true, elog: true, lmce: true });
  t.equal(v & 0xffn, 20n);
  for (const [bitNo, c] of [[8, m.MCG_CTL_P], [9, m.MCG_EXT_P], [10, m.MCG_CMCI_P], [11, m.MCG_TES_P], [24, m.MCG_SER_P], [25, m.MCG_EMC_P], [26, m.MCG_ELOG_P], [27, m.MCG_LMCE_P]] as const) {
    t.equal(c, 1n << BigInt(bitNo), `bit ${bitNo}`);
    t.not(v & c, 0n);
  }
  t.equal((v & m.MCG_EXT_CNT_MASK) >> 16n, 3n);
  t.same(m.decodeMcgCap(v), { banks: 20, ctlP: true, extP: true, cmci: true, tes: true, extCnt: 3, ser: true, emc: true, elog: true, lmce: true });
  t.same(m.decodeMcgCap(m.encodeMcgCap({ banks: 9 })), { banks: 9, ctlP: false, extP: false, cmci: false, tes: false, extCnt: 0, ser: false, emc: false, elog: false, lmce: false });
  t.throws(() => m.encodeMcgCap({ banks: 256 }));
});

t.test('MCG_STATUS fields', async (t) => {
  t.equal(m.MCG_STATUS_RIPV, 1n);
  t.equal(m.MCG_STATUS_EIPV, 2n);
  t.equal(m.MCG_STATUS_MCIP, 4n);
  t.equal(m.MCG_STATUS_LMCES, 8n);
  t.equal(m.MCG_STATUS_TES_P, 0x800n);
  t.equal(m.MCG_STATUS_SEAM_NR, 0x1000n);
  const all = { ripv: true, eipv: true, mcip: true, lmces: true, tesP: true, seamNr: true };
  t.equal(m.encodeMcgStatus(all), 0x180fn);
  t.same(m.decodeMcgStatus(0x180fn), all);
  t.same(m.decodeMcgStatus(7n), { ripv: true, eipv: true, mcip: true, lmces: false, tesP: false, seamNr: false });
});

t.test('MCi_STATUS fields', async (t) => {
  const bits: [keyof m.McStatus, bigint, number][] = [
    ['val', m.MCI_STATUS_VAL, 63], ['over', m.MCI_STATUS_OVER, 62], ['uc', m.MCI_STATUS_UC, 61], ['en', m.MCI_STATUS_EN, 60],
    ['miscv', m.MCI_STATUS_MISCV, 59], ['addrv', m.MCI_STATUS_ADDRV, 58], ['pcc', m.MCI_STATUS_PCC, 57], ['s', m.MCI_STATUS_S, 56], ['ar', m.MCI_STATUS_AR, 55],
  ];
  for (const [name, c, b] of bits) {
    t.equal(c, 1n << BigInt(b), name);
    t.equal(m.decodeStatus(c)[name], true, `${name} decodes`);
    t.equal(m.encodeStatus({ [name]: true }), c, `${name} encodes`);
  }
  // The SRAR data load record used on real kernels (kernel-model §23).
  const srar = m.decodeStatus(0xbd80000000000134n);
  t.same(srar, { val: true, over: false, uc: true, en: true, miscv: true, addrv: true, pcc: false, s: true, ar: true, tes: 'none', cec: 0, mscod: 0, mcacod: 0x134 });
  t.equal(m.encodeStatus(srar), 0xbd80000000000134n);
  t.equal(m.MCI_STATUS_TES_YELLOW, 1n << 54n);
  t.equal(m.decodeStatus(m.MCI_STATUS_TES_YELLOW).tes, 'yellow');
  t.equal(m.decodeStatus(m.MCI_STATUS_TES_GREEN).tes, 'green');
  t.equal(m.encodeStatus({ tes: 'yellow' }), m.MCI_STATUS_TES_YELLOW);
  t.equal(m.statusMscod(0x0010_00c0n), 0x10);
  t.equal(m.statusMcacod(0x0010_00c0n), 0xc0);
  t.equal(m.encodeStatus({ mscod: 0x10, mcacod: 0xc0 }), 0x001000c0n);
});

t.test('corrected error count saturates at 15 bits', async (t) => {
  t.equal(m.MCI_STATUS_CEC_MASK, 0x7fffn << 38n);
  const v = m.withCec(m.MCI_STATUS_VAL, 5);
  t.equal(m.statusCec(v), 5);
  t.equal(v & m.MCI_STATUS_VAL, m.MCI_STATUS_VAL);
  t.equal(m.statusCec(m.withCec(v, 1e9)), 0x7fff);
  t.equal(m.decodeStatus(m.encodeStatus({ cec: 42 })).cec, 42);
});

t.test('MCACOD helpers and MISC', async (t) => {
  for (const c of [0x80, 0xc0, 0xcf, 0x9f, 0x134, 0x150, 0x17a, 0x0c, 0x100c]) t.ok(m.isMemoryErrorMcacod(c), `0x${c.toString(16)} is memory`);
  for (const c of [0x0, 0x5, 0x400, 0x800]) t.notOk(m.isMemoryErrorMcacod(c), `0x${c.toString(16)} not memory`);
  t.equal(m.encodeMisc({ addrLsb: 12, addrMode: m.MCM_ADDR_PHYS }), 0x8cn);
  t.same(m.decodeMisc(0x8cn), { addrLsb: 12, addrMode: 2 });
  t.same(m.decodeMisc(0x1ffn), { addrLsb: 63, addrMode: 7 });
  t.equal(m.encodeMisc({ addrLsb: 6, addrMode: 2 }, 0xabc000n), 0xabc086n);
  t.equal(m.msrMcStatus(2), 0x409);
  t.equal(m.msrMcCtl2(3), 0x283);
});

t.test('classifyStatus (SDM vocabulary)', async (t) => {
  const { MCI_STATUS_VAL: V, MCI_STATUS_EN: E, MCI_STATUS_UC: U, MCI_STATUS_S: S, MCI_STATUS_AR: A, MCI_STATUS_PCC: P } = m;
  t.equal(m.classifyStatus(0n, true), 'none');
  t.equal(m.classifyStatus(V, true), 'disabled');
  t.equal(m.classifyStatus(V | E, true), 'ce');
  t.equal(m.classifyStatus(V | E | U, true), 'ucna');
  t.equal(m.classifyStatus(V | E | U | S, true), 'srao');
  t.equal(m.classifyStatus(V | E | U | S | A, true), 'srar');
  t.equal(m.classifyStatus(V | E | U | P, true), 'uc');
  t.equal(m.classifyStatus(V | E | U | S | A, false), 'uc');
});
