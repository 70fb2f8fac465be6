// Rendering a sim-vs-qemu comparison: TAP (one test point per case and kernel), an agreement
// table per case and per expectation kind, and the JSON written to reports/.
import { stringify } from 'yaml';
import type { CaseDiff, KernelSummary, Tally } from './compare.js';

function esc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/#/g, '\\#').replace(/\n/g, ' ');
}

function yamlBlock(obj: Record<string, unknown>): string {
  const body = stringify(obj, { lineWidth: 0 }).trimEnd();
  return ['  ---', ...body.split('\n').map((l) => `  ${l}`), '  ...'].join('\n');
}

function verdict(ok: boolean, absent?: boolean): string {
  return absent ? (ok ? 'met (not asserted)' : 'not checked') : ok ? 'met' : 'missed';
}

/** One TAP test point: ok when both targets give the same verdict on every assertion. */
export function tapPoint(d: CaseDiff, n: number): string {
  const title = esc(`${d.name}${d.name.endsWith(`[${d.kernel}]`) ? '' : ` [${d.kernel}]`}`);
  if (d.status === 'skip') return `ok ${n} - ${title} # SKIP ${esc(d.reason ?? '')}`;
  if (d.status === 'error') return `not ok ${n} - ${title}\n${yamlBlock({ message: d.reason ?? 'error', at: d.file, ...(d.qemuLog?.length ? { 'qemu log': d.qemuLog.slice(-15).join('\n') } : {}) })}`;
  const head = `${d.agree ? 'ok' : 'not ok'} ${n} - ${title} (${d.agreed}/${d.compared} agree)`;
  if (d.agree) return head;
  const differ = d.assertions
    .filter((a) => !a.agree)
    .map((a) => ({
      assertion: a.name,
      kind: a.kind,
      wanted: a.wanted ?? null,
      sim: { verdict: verdict(a.sim.ok, a.sim.absent), found: a.sim.found ?? null },
      qemu: { verdict: verdict(a.qemu.ok, a.qemu.absent), found: a.qemu.found ?? null },
      ...(a.at ? { at: { file: d.file, line: a.at.line, column: a.at.col } } : {}),
    }));
  return `${head}\n${yamlBlock({ message: `model and kernel disagree on ${differ.length} assertion(s)`, differ, ...(d.qemuLog?.length ? { 'qemu log': d.qemuLog.slice(-20).join('\n') } : {}) })}`;
}

const pct = (t: Tally): string => (t.compared ? `${((100 * t.agreed) / t.compared).toFixed(1)}%` : '-');

function table(rows: string[][]): string[] {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ').trimEnd());
}

/** The agreement tables (per case, per kind, per kernel) as text lines. */
export function agreementTable(diffs: CaseDiff[], sums: KernelSummary[]): string[] {
  const out: string[] = [];
  const cases = diffs.filter((d) => d.status !== 'skip');
  if (cases.length) {
    out.push('Agreement per case (sim vs qemu, same kernel profile):');
    out.push(
      ...table([
        ['case', 'kernel', 'agree', 'compared', '%', 'sim', 'qemu'],
        ...cases.map((d) => [d.id, d.kernel, d.status === 'compared' ? String(d.agreed) : '-', d.status === 'compared' ? String(d.compared) : '-', d.status === 'compared' ? pct(d) : 'error', d.sim, d.qemu]),
      ]).map((l) => `  ${l}`),
    );
  }
  const kinds = [...new Set(sums.flatMap((s) => Object.keys(s.byKind)))].sort();
  if (kinds.length) {
    out.push('Agreement per expectation kind:');
    out.push(...table([['kind', ...sums.flatMap((s) => [`${s.kernel} agree/compared`, '%'])], ...kinds.map((k) => [k, ...sums.flatMap((s) => { const t = s.byKind[k] ?? { compared: 0, agreed: 0 }; return [`${t.agreed}/${t.compared}`, pct(t)]; })])]).map((l) => `  ${l}`));
  }
  out.push('Totals:');
  out.push(
    ...table([
      ['kernel', 'cases', 'compared', 'agreeing', 'skipped', 'errors', 'assertions agree/compared', 'agreement', 'sim ms/case', 'qemu ms/case'],
      ...sums.map((s) => [s.kernel, String(s.cases), String(s.comparedCases), String(s.agreeingCases), String(s.skipped), String(s.errors), `${s.assertions.agreed}/${s.assertions.compared}`, pct(s.assertions), s.simMsPerCase.toFixed(1), s.qemuMsPerCase.toFixed(0)]),
    ]).map((l) => `  ${l}`),
  );
  return out;
}

export interface DiffReport {
  generated: string;
  kernels: KernelSummary[];
  skipped: { id: string; kernel: string; reason: string }[];
  cases: CaseDiff[];
}

export function diffJson(diffs: CaseDiff[], sums: KernelSummary[]): DiffReport {
  return {
    generated: new Date().toISOString(),
    kernels: sums,
    skipped: diffs.filter((d) => d.status === 'skip').map((d) => ({ id: d.id, kernel: d.kernel, reason: d.reason ?? '' })),
    cases: diffs.filter((d) => d.status !== 'skip'),
  };
}
