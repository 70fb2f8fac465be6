// JUnit XML for CI dashboards: one testsuite per run, one testcase per case, a <failure> with
// every failed expectation. Written by us: tap-junit drops subtests and counts TODO as failure.
import type { CaseResult, Reporter, RunSummary } from '../result.js';
import { isFailure } from '../result.js';
import { writeFileAtomic } from './atomic.js';

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

export function renderJunit(all: CaseResult[], s: RunSummary): string {
  const failures = all.filter((r) => isFailure(r) && r.status !== 'todo').length;
  // TODO cases are written as <skipped/> too: the counts must match the elements.
  const skipped = all.filter((r) => r.status === 'skip' || r.status === 'todo').length;
  const out = [`<?xml version="1.0" encoding="UTF-8"?>`, `<testsuites name="hwpsim" tests="${all.length}" failures="${failures}" skipped="${skipped}">`, `  <testsuite name="hwpsim" tests="${all.length}" failures="${failures}" skipped="${skipped}" time="${(s.durationMs / 1000).toFixed(3)}">`];
  for (const r of all) {
    const cls = xmlEscape(r.id.replace(/\.ya?ml$/, '').replace(/\//g, '.'));
    out.push(`    <testcase classname="${cls}" name="${xmlEscape(r.name)}" time="${(r.durationMs / 1000).toFixed(4)}">`);
    if (r.status === 'skip') out.push(`      <skipped message="${xmlEscape(r.reason ?? '')}"/>`);
    else if (r.status === 'todo') out.push(`      <skipped message="TODO ${xmlEscape(r.reason ?? '')}"/>`);
    else if (isFailure(r)) {
      const failed = r.assertions.filter((a) => !a.ok);
      const msg = r.reason ?? failed.map((a) => a.name).join('; ');
      const body = r.reason
        ? r.reason
        : failed.map((a) => `${a.name}\n  wanted: ${JSON.stringify(a.wanted)}\n  found: ${JSON.stringify(a.found)}${a.at ? `\n  at: ${r.file}:${a.at.line}:${a.at.col}` : ''}`).join('\n');
      out.push(`      <failure message="${xmlEscape(msg)}" type="${r.status}">${xmlEscape(body)}</failure>`);
      if (r.log?.length) out.push(`      <system-out>${xmlEscape(r.log.join('\n'))}</system-out>`);
    }
    out.push('    </testcase>');
  }
  out.push('  </testsuite>', '</testsuites>', '');
  return out.join('\n');
}

export class JunitReporter implements Reporter {
  constructor(private readonly file: string) {}
  onCase(): void {}
  onEnd(s: RunSummary, all: CaseResult[]): void {
    writeFileAtomic(this.file, renderJunit(all, s));
  }
}
