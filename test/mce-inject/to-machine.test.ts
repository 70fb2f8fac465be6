import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { groupInjections, injectionToMachine, parseMce } from '../../tsrc/tools/mce-inject/index.js';
import { Machine } from '../../tsrc/hw/machine.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mce-inject');
const load = (f: string) => groupInjections(parseMce(readFileSync(join(FIX, `${f}.mce`), 'utf8'))).injections;

t.test('broadcast exception: bystanders get the synthetic record', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const [inj] = load('recoverable_ucr/srar_usr_dcu_nmi');
  const mi = injectionToMachine(inj!, m.cpus.onlineIds());
  t.equal(mi.kick, 'nmi');
  const ev = m.raise(mi.records, mi.options);
  t.same(ev.cpus.map((c) => [c.cpu, c.delivery]), [[0, 'exception'], [1, 'exception'], [2, 'exception'], [3, 'exception']]);
  t.same(ev.missing, []);
  t.equal(ev.cpus[0]!.mcgStatus, 7n);
  t.equal(ev.cpus[0]!.cs, 0x73);
  t.equal(ev.cpus[1]!.mcgStatus, 5n, 'MCIP | RIPV');
  t.equal(m.mca.bank(1, 0).status, 1n << 61n, 'only UC: not valid');
  t.same(ev.cpus[1]!.validBanks, []);
});

t.test('NOBROADCAST: the rendezvous will miss the other CPUs', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const [inj] = load('panic/fatal_timeout');
  const mi = injectionToMachine(inj!, m.cpus.onlineIds());
  t.equal(mi.kick, 'none');
  const ev = m.raise(mi.records, mi.options);
  t.same(ev.cpus.map((c) => c.cpu), [0]);
  t.same(ev.missing, [1, 2, 3]);
});

t.test('HOLD + trigger: held EXCP CE joins the broadcast; polled CEs do not broadcast', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const [inj] = load('recoverable_ucr/srao_corrected');
  const ev = m.raise(...((mi) => [mi.records, mi.options] as const)(injectionToMachine(inj!, m.cpus.onlineIds())));
  t.same(ev.cpus.map((c) => [c.cpu, c.delivery, c.hasRecord]), [[0, 'exception', true], [1, 'exception', true], [2, 'exception', true], [3, 'exception', true]]);
  t.equal(ev.cpus[1]!.mcgStatus, 5n);
  const n = Machine.fromProfile('intel-noser');
  const injs = load('non-panic/corrected');
  const ev1 = n.raise(...((mi) => [mi.records, mi.options] as const)(injectionToMachine(injs[0]!, n.cpus.onlineIds())));
  t.same(ev1.cpus.map((c) => [c.cpu, c.delivery]), [[0, 'poll'], [1, 'poll']]);
  t.same(ev1.missing, []);
  t.same(ev1.cpus[0]!.validBanks, [1]);
});

t.test('IN_IRQ and IRQBROADCAST', async (t) => {
  const m = Machine.fromProfile('intel-ser');
  const [irq] = load('panic/fatal_irq');
  const mi = injectionToMachine(irq!, m.cpus.onlineIds());
  t.equal(mi.records[0]!.context, 'irq');
  const [ib] = load('recoverable_ucr/srar_usr_dcu_irq');
  t.equal(injectionToMachine(ib!, m.cpus.onlineIds()).kick, 'irq');
});
