import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MceParseError, emptyRecord, groupInjections, isException, parseMce, printRecords, tokenize, validateRecords,
} from '../../tsrc/tools/mce-inject/index.js';
import type { MceRecord } from '../../tsrc/tools/mce-inject/index.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mce-inject');
const fixtures = readdirSync(FIX, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => readdirSync(join(FIX, d.name)).filter((f) => f.endsWith('.mce')).map((f) => `${d.name}/${f}`))
  .sort();

const bit = (n: number): bigint => 1n << BigInt(n);
const VAL = bit(63), OVER = bit(62), UC = bit(61), EN = bit(60), MISCV = bit(59), ADDRV = bit(58), PCC = bit(57), S = bit(56), AR = bit(55);
const rec = (p: Partial<MceRecord>): MceRecord => ({ ...emptyRecord(), ...p });
const one = (src: string): MceRecord => {
  const rs = parseMce(src);
  if (rs.length !== 1) throw new Error(`expected one record, got ${rs.length}`);
  return rs[0]!;
};
const err = (src: string): string => {
  try {
    parseMce(src);
  } catch (e) {
    if (e instanceof MceParseError) return e.message;
    throw e;
  }
  return 'no error';
};

t.test('all 45 mce-test data files parse and round-trip', async (t) => {
  t.equal(fixtures.length, 45);
  for (const f of fixtures) {
    const recs = parseMce(readFileSync(join(FIX, f), 'utf8'));
    t.ok(recs.length >= 1, `${f}: has records`);
    const printed = printRecords(recs);
    t.same(parseMce(printed), recs, `${f}: parse(print(parse(x))) == parse(x)`);
    t.equal(printRecords(parseMce(printed)), printed, `${f}: print is a fixed point`);
  }
});

t.test('selected fixtures decode to the expected registers', async (t) => {
  const load = (f: string): MceRecord[] => parseMce(readFileSync(join(FIX, f), 'utf8'));
  const [srar] = load('recoverable_ucr/srar_usr_dcu.mce');
  t.match(srar, { cpu: 0, bank: 2, status: 0xbd80000000000134n, mcgStatus: 7n, addr: 0x12345000n, misc: 0x8cn, cs: 0x73, ip: 0x1eadbaben, noBroadcast: true });
  const [fatal] = load('panic/fatal.mce');
  t.match(fatal, { cpu: 0, bank: 4, status: VAL | UC | EN | PCC | S | MISCV, mcgStatus: 4n, ip: 12343434n, cs: 0, misc: 11n });
  const corrected = load('non-panic/corrected.mce');
  t.equal(corrected.length, 4);
  t.match(corrected.map((r) => [r.cpu, r.bank, r.hold]), [[0, 1, true], [1, 0, false], [1, 2, true], [0, 0, false]]);
  t.equal(corrected[2]!.status, VAL | EN | MISCV | ADDRV);
  const [s0] = load('panic_ucr/s0_ar1.mce');
  t.equal(s0!.status, VAL | UC | EN | AR | ADDRV);
  const [, ucnaTrigger] = load('poll_ucr/ucna.mce');
  t.match(ucnaTrigger, { cpu: 1, bank: 0, status: 0n });
  const [ov] = load('panic_noser/uc_over_corrected.mce');
  t.match(ov, { context: 'process', raise: 'excp', hold: true, cs: 0x13, ip: 0x12345678n });
  const [irq] = load('recoverable_ucr/srar_usr_dcu_irq.mce');
  t.match(irq, { cpu: 3, irqBroadcast: true });
});

t.test('numbers: hex, octal, decimal, unsigned 64-bit', async (t) => {
  t.equal(one('CPU 0 TSC 0x1F').tsc, 31n);
  t.equal(one('CPU 0 TSC 010').tsc, 8n);
  t.equal(one('CPU 0 TSC 0').tsc, 0n);
  t.equal(one('CPU 0 TSC 10').tsc, 10n);
  t.equal(one('CPU 0 TSC 0xffffffffffffffff').tsc, (1n << 64n) - 1n);
  t.equal(one('CPU 0 TSC 18446744073709551615').tsc, (1n << 64n) - 1n);
  t.equal(err('CPU 0 TSC 0x10000000000000000'), "1:11: number '0x10000000000000000' does not fit in 64 bits");
  t.equal(err('CPU 0 TSC 019'), "1:13: invalid digit '9' in octal number '019'");
  t.equal(err('CPU 0 BANK 256'), '1:12: BANK value 256 does not fit in 8 bits');
  t.equal(one('CPU 0 BANK 255').bank, 255);
});

t.test('keywords are case-insensitive; comments; several fields per line', async (t) => {
  const a = parseMce('cpu 1 bank 2 status uncorrected srar 0x134 # trailing comment\nmcgstatus ripv eipv mcip\n# comment line\nMce Bank 3');
  t.equal(a.length, 2);
  t.match(a[0], { cpu: 1, bank: 2, status: VAL | UC | EN | S | AR | 0x134n, mcgStatus: 7n });
  t.match(a[1], { cpu: 0, bank: 3 });
  const toks = tokenize('# c\n  STATUS');
  t.match(toks[0], { kind: 'keyword', value: 'STATUS', line: 2, col: 3 });
});

t.test('every STATUS / MCGSTATUS symbol', async (t) => {
  const st = (s: string): bigint => one(`CPU 0 STATUS ${s}`).status;
  t.equal(st('VAL'), VAL);
  t.equal(st('OVER'), OVER);
  t.equal(st('UC'), UC);
  t.equal(st('EN'), EN);
  t.equal(st('PCC'), PCC);
  t.equal(st('S'), S);
  t.equal(st('AR'), AR);
  t.equal(st('TES_YELLOW'), bit(54));
  t.equal(st('CORRECTED'), VAL | EN);
  t.equal(st('UNCORRECTED'), VAL | UC | EN);
  t.equal(st('FATAL'), VAL | UC | EN | PCC);
  t.equal(st('UCNA'), 0n);
  t.equal(st('SRAO'), S);
  t.equal(st('SRAR'), S | AR);
  t.equal(st(''), 0n, 'empty list is 0');
  t.equal(st('0xc0 UC 0x100'), UC | 0x1c0n, 'numbers OR in');
  const mcg = (s: string): bigint => one(`CPU 0 MCGSTATUS ${s}`).mcgStatus;
  t.equal(mcg('RIPV'), 1n);
  t.equal(mcg('EIPV'), 2n);
  t.equal(mcg('MCIP'), 4n);
  t.equal(mcg('LMCES'), 8n);
  t.equal(mcg('TES_P'), 0x800n);
  t.equal(mcg('SEAM_NR'), 0x1000n);
  t.equal(mcg('RIPV 0x10'), 0x11n);
  t.equal(err('CPU 0 MCGSTATUS UC'), "1:17: unexpected 'UC': expected a record field, CPU or MCE");
  t.equal(err('CPU 0 STATUS RIPV'), "1:14: unexpected 'RIPV': expected a record field, CPU or MCE");
});

t.test('ADDR/MISC imply ADDRV/MISCV; STATUS replaces STATUS', async (t) => {
  t.equal(one('CPU 0 STATUS UC ADDR 1 MISC 2').status, UC | ADDRV | MISCV);
  t.equal(one('CPU 0 ADDR 1 MISC 2 STATUS UC').status, UC, 'a later STATUS drops ADDRV/MISCV');
  t.equal(one('CPU 0 STATUS UC STATUS EN').status, EN);
  t.equal(one('CPU 0 ADDR 0').status, ADDRV, 'ADDR 0 still sets ADDRV');
  t.equal(one('CPU 0 MCGSTATUS RIPV MCGSTATUS MCIP').mcgStatus, 4n);
});

t.test('all other terms and flags', async (t) => {
  const r = one('CPU 2 BANK 1 TSC 5 TIME 6 SOCKETID 1 APICID 3 MCGCAP 0x1000c14 PROCESSOR 0:0x50654 RIP 0x10:<0xffffffff81234567>{memcpy} IN_IRQ EXCP NOBROADCAST IRQBROADCAST NMIBROADCAST HOLD');
  t.same(r, rec({
    cpu: 2, bank: 1, tsc: 5n, time: 6n, socketId: 1, apicId: 3, mcgCap: 0x1000c14n, cpuVendor: 0, cpuid: 0x50654, cs: 0x10, ip: 0xffffffff81234567n,
    context: 'irq', raise: 'excp', noBroadcast: true, irqBroadcast: true, nmiBroadcast: true, hold: true,
  }));
  t.match(one('CPU 0 RIP 0x33:0x400000'), { cs: 0x33, ip: 0x400000n });
  t.match(one('CPU 0 RIP 1234'), { cs: 0, ip: 1234n });
  t.match(one('CPU 0 IN_IRQ IN_PROC POLL'), { context: 'process', raise: 'poll' });
  t.match(one('CPU 0 POLL EXCP'), { raise: 'excp' });
  t.match(one('CPU 3 7 HOLD'), { cpu: 3, bank: 7, hold: true }, 'CPU n bank start form');
  t.equal(err('CPU 0 RIP 0x100:0'), '1:11: RIP code segment 0x100 does not fit in 8 bits');
  t.equal(err('CPU 0 RIP 0x10:<5>{+}'), "1:20: unrecognized character '+'");
  t.equal(err('CPU 0 RIP 0x10:<5>{STATUS}'), "1:20: expected a symbol name inside '{ }', found 'STATUS'");
  t.equal(err('CPU 0 PROCESSOR 0 0x1'), "1:19: expected ':' between PROCESSOR vendor and cpuid, found number 0x1");
});

t.test('kernel panic line start form', async (t) => {
  const r = one('CPU 1: Machine Check Exception: 7 Bank 2: 0xbd80000000000134\nADDR 0x1000');
  t.match(r, { cpu: 1, bank: 2, mcgStatus: 7n, status: 0xbd80000000000134n | ADDRV, addr: 0x1000n });
  t.equal(err('CPU 1: Machine Check: 7 Bank 2: 0x1 TSC 0'), "1:21: expected EXCEPTION in \"CPU n: Machine Check Exception:\", found ':'");
  t.equal(err('CPU 1: Machine Check Exception: 7 Bank 2: 0x1'), '1:46: expected a record field after the panic line, found end of input');
});

t.test('errors carry line and column', async (t) => {
  t.equal(err('CPU 0\nBANK 1\nSTATUS $'), "3:8: unrecognized character '$'");
  t.equal(err('CPU 0 BANK 1\n\n\n\nBANK'), '5:5: expected a number after BANK, found end of input');
  t.equal(err('CPU 0\n\n\n\nBANK STATUS'), "5:6: expected a number after BANK, found 'STATUS'");
  t.equal(err('STATUS 1'), "1:1: expected CPU or MCE to start a record, found 'STATUS'");
  t.equal(err('CPU 0'), '1:6: expected a record field after CPU 0, found end of input');
  t.equal(err('CPU 0 CPU 1 BANK 2'), "1:7: expected a record field after CPU 0, found 'CPU'");
  t.equal(err('MCE\nfoo'), "2:1: expected a record field after MCE, found 'foo'");
  t.equal(err('CPU 0 BANK 1 2'), "1:14: unexpected number 2: expected a record field, CPU or MCE");
  t.equal(err('CPU x'), "1:5: expected a number after CPU, found 'x'");
  t.equal(err('CPU 0 BANK 1\r\nTSC 0x\n'), "2:6: unexpected 'x': expected a record field, CPU or MCE");
  t.ok(new MceParseError(1, 2, 'x') instanceof Error);
  t.equal(new MceParseError(3, 7, 'm').line, 3);
  t.same(parseMce(''), []);
  t.same(parseMce('# only a comment\n'), []);
});

t.test('injection semantics helpers', async (t) => {
  t.ok(isException(rec({ status: UC })));
  t.notOk(isException(rec({ status: VAL | EN })));
  t.notOk(isException(rec({ status: UC, raise: 'poll' })));
  t.ok(isException(rec({ status: 0n, raise: 'excp' })));
  const recs = parseMce(readFileSync(join(FIX, 'non-panic/corrected.mce'), 'utf8'));
  const { injections, leftover } = groupInjections(recs);
  t.equal(injections.length, 2);
  t.same(injections[0]!.records.map((r) => [r.cpu, r.bank]), [[0, 1], [1, 0]]);
  t.same(injections[1]!.records.map((r) => [r.cpu, r.bank]), [[1, 2], [0, 0]]);
  t.same(leftover, []);
  const g = groupInjections(parseMce('CPU 0 BANK 1 HOLD CPU 0 BANK 2 HOLD CPU 1 BANK 3 HOLD CPU 1 BANK 0 CPU 2 BANK 0 HOLD'));
  t.same(g.injections[0]!.records.map((r) => [r.cpu, r.bank]), [[0, 2], [1, 0]], 'later HOLD replaces; trigger CPU wins');
  t.same(g.leftover.map((r) => r.cpu), [2]);
});

t.test('validateRecords uses mce-inject messages', async (t) => {
  const target = { cpus: { isOnline: (c: number) => c >= 0 && c < 4 && c !== 2 }, mca: { bankCount: 6 } };
  const recs = parseMce('CPU 0 BANK 5\nCPU 2 BANK 1\nCPU 7 BANK 6');
  t.same(validateRecords(recs, target), [
    { index: 1, message: 'cpu 2 not online' },
    { index: 2, message: 'cpu 7 not online' },
    { index: 2, message: 'larger machine check bank 6 than supported on this cpu (5)' },
  ]);
});
