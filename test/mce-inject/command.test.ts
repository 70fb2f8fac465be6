import t from 'tap';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs from 'yargs';
import cmd, { dumpFiles } from '../../runner/commands/mce-inject.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'mce-inject');

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
}

t.test('dumpFiles prints canonical records', async (t) => {
  const c = capture();
  const code = await dumpFiles([join(FIX, 'recoverable_ucr/srar_usr_dcu.mce')], c.io);
  t.equal(code, 0);
  t.same(c.err, []);
  t.equal(c.out.join(''), [
    'CPU 0', 'BANK 2', 'TSC 0x0', 'TIME 0', 'RIP 0x73:0x1eadbabe', 'MISC 0x8c', 'ADDR 0x12345000',
    'STATUS 0xbd80000000000134', 'MCGSTATUS 0x7', 'NOBROADCAST', 'PROCESSOR 0:0x0', '', '',
  ].join('\n'));
});

t.test('parse errors: FILE:LINE:COL: message, exit 2', async (t) => {
  const c = capture();
  const code = await dumpFiles(['bad.mce'], { ...c.io, read: async () => 'CPU 0\nBANK 1\nSTATUS $\n' });
  t.equal(code, 2);
  t.same(c.err, ["bad.mce:3:8: unrecognized character '$'\n"]);
  t.same(c.out, []);
  const d = capture();
  t.equal(await dumpFiles(['/nonexistent/x.mce'], d.io), 2);
  t.match(d.err.join(''), /^\/nonexistent\/x\.mce: .*ENOENT/);
});

t.test('yargs command module', async (t) => {
  const written: string[] = [];
  const errs: string[] = [];
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  const saved = process.exitCode;
  try {
    process.stdout.write = ((s: string) => (written.push(String(s)), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    await yargs(['mce-inject', '--dump', join(FIX, 'panic/fatal.mce'), join(FIX, 'non-panic/corrected.mce')]).command(cmd).parseAsync();
    const ec1 = process.exitCode;
    process.exitCode = undefined;
    await yargs(['mce-inject', join(FIX, 'panic/fatal.mce')]).command(cmd).parseAsync();
    const ec2 = process.exitCode;
    process.exitCode = undefined;
    process.stdout.write = ow;
    process.stderr.write = ew;
    t.equal(ec1, undefined);
    t.equal(written.join('').split('\n\n').filter((s) => s.trim()).length, 5, '1 + 4 records');
    t.equal(ec2, 2, 'without --dump: usage error');
    t.match(errs.join(''), /only --dump/);
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    process.exitCode = saved;
  }
});
