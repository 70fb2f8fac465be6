// TAP 14 (subtests per expectation, YAML diagnostics) and a flat TAP 13 for simple consumers
// such as Debian's prove.
import { stringify } from 'yaml';
import type { CaseResult, Reporter, RunSummary } from '../result.js';
import { isFailure } from '../result.js';

function esc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/#/g, '\\#').replace(/\n/g, ' ');
}

function yamlBlock(obj: Record<string, unknown>, indent: string): string {
  const body = stringify(obj, { lineWidth: 0 }).trimEnd();
  return [`${indent}  ---`, ...body.split('\n').map((l) => `${indent}  ${l}`), `${indent}  ...`].join('\n');
}

function diagFor(r: CaseResult, a: CaseResult['assertions'][number]): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  if (a.message) d.message = a.message;
  d.wanted = a.wanted ?? null;
  d.found = a.found ?? null;
  if (a.at) d.at = { file: r.file, line: a.at.line, column: a.at.col };
  if (r.log?.length) d.log = r.log.slice(-20).join('\n');
  if (r.trail?.length) d.trail = r.trail.slice(-15);
  return d;
}

export function caseDirective(r: CaseResult): string {
  if (r.status === 'skip') return ` # SKIP ${esc(r.reason ?? '')}`;
  if (r.status === 'todo') return ` # TODO ${esc(r.reason ?? '')}`;
  // Not a TAP directive, but it says on the test line itself why the case failed.
  if (r.status === 'timeout') return ` # timeout: ${esc(r.reason ?? '')}`;
  return '';
}

/** Renders one case as a TAP 14 subtest (or a flat TAP 13 line). */
export function renderCase(r: CaseResult, n: number, version: 13 | 14): string {
  const lines: string[] = [];
  const ok = !isFailure(r) || r.status === 'todo';
  const title = esc(r.name);
  if (version === 14 && r.status !== 'skip' && r.status !== 'invalid' && r.status !== 'error' && r.status !== 'timeout') {
    lines.push(`# Subtest: ${title}`);
    r.assertions.forEach((a, i) => {
      lines.push(`    ${a.ok ? 'ok' : 'not ok'} ${i + 1} - ${esc(a.name)}`);
      if (!a.ok) lines.push(yamlBlock(diagFor(r, a), '    '));
    });
    lines.push(`    1..${r.assertions.length}`);
  }
  lines.push(`${r.status === 'todo' ? 'not ok' : ok ? 'ok' : 'not ok'} ${n} - ${title}${caseDirective(r)}`);
  if (r.status === 'invalid' || r.status === 'error' || r.status === 'timeout') {
    lines.push(yamlBlock({ message: r.reason ?? r.status, at: r.file }, ''));
  } else if (version === 13 && isFailure(r)) {
    const failed = r.assertions.filter((a) => !a.ok);
    lines.push(yamlBlock({ failures: failed.map((a) => ({ name: a.name, ...diagFor({ ...r, log: [], trail: [] }, a) })), log: (r.log ?? []).slice(-20).join('\n') }, ''));
  }
  return lines.join('\n');
}

export class TapReporter implements Reporter {
  private chunks: string[] = [];
  constructor(
    private readonly write: (s: string) => void,
    private readonly version: 13 | 14,
  ) {}

  onStart(info: { total: number; seed: number }): void {
    this.emit(`TAP version ${this.version}`);
    this.emit(`1..${info.total}`);
    this.emit(`# seed: ${info.seed}`);
  }

  onCase(r: CaseResult, index: number): void {
    this.emit(renderCase(r, index + 1, this.version));
  }

  onEnd(s: RunSummary): void {
    if (s.interrupted) this.emit('Bail out! interrupted');
    else if (s.bailed) this.emit('Bail out! --bail: stopped after the first failure');
    this.emit(`# ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped${s.todo ? `, ${s.todo} todo` : ''}`);
  }

  text(): string {
    return `${this.chunks.join('\n')}\n`;
  }

  private emit(s: string): void {
    this.chunks.push(s);
    this.write(`${s}\n`);
  }
}
