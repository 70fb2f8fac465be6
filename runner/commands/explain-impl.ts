// `hwpsim explain <case>`: the case step by step — what the model did and why: the severity row
// that matched, the page state found, the action and result, who was collected and signalled.
import { CaseError, loadCase } from '../case/load.js';
import { checkCase } from '../check/check.js';
import { runSim } from '../targets/sim/index.js';
import { actionOf } from '../targets/sim/index.js';
import { errnoName } from '../../tsrc/kernel/errno.js';

export interface Args {
  case: string;
  kernel?: string;
}

export function explainText(file: string, kernel?: string): string {
  const c = loadCase(file);
  const obs = runSim(c, { timeoutMs: 10000, checkInvariants: true, seed: 0, ...(kernel ? { kernel } : {}) });
  const out: string[] = [`case: ${c.name}`, `kernel profile: ${obs.kernel}`];
  if (obs.setup.error) out.push(`setup failed: ${obs.setup.error}`);
  const verdict = checkCase(c, obs);
  for (const [i, so] of obs.steps.entries()) {
    const step = c.config.steps![i]!;
    const pos = c.positionOf(['steps', i]);
    out.push('', `step ${i + 1}: ${step.as ?? actionOf(step)}  (${c.file}:${pos.line}:${pos.col})`);
    if (so.notRun) out.push(`  not run: ${so.notRun}`);
    for (const e of so.trail) out.push(`  ${e.fn}: ${e.msg}`);
    for (const l of so.log) out.push(`  log: ${l}`);
    for (const s of so.signals) out.push(`  signal: ${s.signo}${s.code ? ` ${s.code}` : ''} to ${s.proc}${s.thread ? `.${s.thread}` : ''}:${s.tid}${s.addr ? ` addr ${s.addr}` : ''}${s.lsb !== undefined ? ` lsb ${s.lsb}` : ''}${s.fatal ? ' (killed it)' : ' (handled)'}`);
    if (so.ret !== undefined) out.push(`  returned ${so.ret}${so.ret < 0 ? ` (${errnoName(so.ret)})` : ''}`);
    if (so.severity) out.push(`  severity: ${so.severity.level}: ${so.severity.msg}`);
    for (const a of verdict.assertions.filter((x) => x.step === i)) out.push(`  ${a.ok ? 'ok' : 'FAIL'}: ${a.name}${a.ok ? '' : ` (wanted ${JSON.stringify(a.wanted)}, found ${JSON.stringify(a.found)})`}`);
  }
  const end = verdict.assertions.filter((x) => x.step === -1);
  if (end.length) {
    out.push('', 'end:');
    for (const a of end) out.push(`  ${a.ok ? 'ok' : 'FAIL'}: ${a.name}${a.ok ? '' : ` (wanted ${JSON.stringify(a.wanted)}, found ${JSON.stringify(a.found)})`}`);
  }
  out.push('', verdict.ok ? 'verdict: pass' : 'verdict: FAIL');
  return `${out.join('\n')}\n`;
}

export function explainHandler(file: string, kernel?: string): void {
  try {
    process.stdout.write(explainText(file, kernel));
  } catch (e) {
    process.stderr.write(`${e instanceof CaseError ? e.message : `hwpsim: ${(e as Error).message}`}\n`);
    process.exitCode = 2;
  }
}
