// `hwpsim record <case>`: run a case on the simulator and write what it observed into the case's
// expectations (keeping comments and layout), for adding regression cases. Refuses under CI.
import { readFileSync } from 'node:fs';
import { isMap, parseDocument, YAMLMap, YAMLSeq } from 'yaml';
import { CaseError, loadCase } from '../case/load.js';
import { runSim } from '../targets/sim/index.js';
import { writeFileAtomic } from '../reporters/atomic.js';
import { errnoName } from '../../tsrc/kernel/errno.js';
import type { ObservedSignal, QueryAnswers } from '../targets/target.js';

export interface Args {
  case: string;
  force: boolean;
  kernel?: string;
}

/** Replaces pfns and addresses the step resolved with templates, so the line holds on any target. */
function templatize(line: string, refs: QueryAnswers['refs'], primary: string | undefined): string {
  let out = line;
  const entries = Object.entries(refs ?? {}).sort(([a], [b]) => (a === primary ? -1 : b === primary ? 1 : 0));
  for (const [ref, r] of entries) {
    if (ref.startsWith('pid:') || ref.startsWith('tid:')) continue;
    if (r.pfn) out = out.split(r.pfn).join(ref === primary ? '{pfn}' : `{pfn:${ref}}`);
    if (r.addr) out = out.split(r.addr).join(`{addr:${ref}}`);
  }
  for (const [ref, r] of Object.entries(refs ?? {})) {
    if (ref.startsWith('tid:') && r.tid !== undefined && r.comm) out = out.split(`${r.comm}:${r.tid}`).join(`{comm:${ref.slice(4)}}:{tid:${ref.slice(4)}}`);
  }
  return out;
}

function signalExpect(s: ObservedSignal, refs: QueryAnswers['refs']): Record<string, unknown> {
  const e: Record<string, unknown> = { to: s.thread ? `${s.proc}.${s.thread}` : s.proc, signo: s.signo };
  if (s.code) e.code = s.code;
  if (s.addr) {
    const hit = Object.entries(refs ?? {}).find(([, r]) => r.addr && s.addr && BigInt(r.addr) === BigInt(s.addr));
    if (hit) e.addr = hit[0];
  }
  if (s.lsb !== undefined) e.lsb = s.lsb;
  return e;
}

export function recordCase(file: string, kernel?: string): string {
  const c = loadCase(file);
  const obs = runSim(c, { timeoutMs: 10000, checkInvariants: false, seed: 0, ...(kernel ? { kernel } : {}) });
  if (obs.setup.error) throw new Error(`setup failed: ${obs.setup.error}`);
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const steps = doc.get('steps');
  if (steps instanceof YAMLSeq) {
    obs.steps.forEach((so, i) => {
      const node = steps.items[i];
      if (!isMap(node) || so.notRun) return;
      const primaryKey = Object.keys(c.config.steps![i]!).find((k) => k !== 'as' && k !== 'expect' && k !== 'repeat');
      const raw = primaryKey ? (c.config.steps![i] as Record<string, unknown>)[primaryKey] : undefined;
      const primary = typeof raw === 'string' ? raw : raw && typeof raw === 'object' && 'page' in raw ? String((raw as { page: unknown }).page) : undefined;
      const expect = new YAMLMap();
      if (so.ret !== undefined) {
        if (so.ret < 0) expect.set('errno', errnoName(so.ret));
        else expect.set('ret', so.ret);
      }
      if (so.log.length) expect.set('log', so.log.map((l) => templatize(l, so.answers.refs, primary)));
      expect.set('signals', so.signals.map((s) => signalExpect(s, so.answers.refs)));
      node.set('expect', expect);
    });
  }
  const procs = [...new Set(obs.final.signals.map((s) => s.proc).concat((c.config.workload?.processes ?? []).map((p) => p.name)))];
  const killed = procs.filter((p) => obs.final.signals.some((s) => s.proc === p && s.fatal));
  const end = new YAMLMap();
  if (killed.length) end.set('killed', killed);
  const alive = procs.filter((p) => !killed.includes(p));
  if (alive.length) end.set('alive', alive);
  const hc = obs.final.log.length >= 0 ? undefined : undefined;
  void hc;
  if (obs.final.panic) end.set('panic', obs.final.panic);
  doc.set('expect', end);
  return doc.toString({ lineWidth: 0 });
}

export function recordHandler(argv: Args): void {
    if (process.env.CI && !argv.force) {
      process.stderr.write('hwpsim: refusing to record under CI (expectations must come from the kernel, not from a CI run); use --force\n');
      process.exitCode = 2;
      return;
    }
    try {
      const text = recordCase(argv.case, argv.kernel);
      writeFileAtomic(argv.case, text);
      process.stderr.write(`recorded ${argv.case}\n`);
    } catch (e) {
      process.stderr.write(`${e instanceof CaseError ? e.message : `hwpsim: ${(e as Error).message}`}\n`);
      process.exitCode = 2;
    }
  }
