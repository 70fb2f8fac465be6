// Generated "typical" cases for the throughput benchmark: a few processes with anonymous
// mappings, one or two injections (corrupt-pfn or madvise(MADV_HWPOISON)) and a few
// expectations: the shape of most of the built-in library.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rng } from '../runner/run.js';

/** The text of typical case number `i`. */
export function typicalCase(i: number): string {
  const r = rng(i + 1);
  const int = (n: number): number => Math.floor(r() * n);
  const pages = 4 + int(13);
  const bystanders = 1 + int(3);
  const page = int(pages);
  const other = (page + 1 + int(pages - 1)) % pages;
  const variant = i % 4;
  const procs: string[] = [];
  const victimPolicy = variant === 1 ? '\n      mce-kill: early' : '';
  procs.push(`    - name: victim\n      sigbus: handler${victimPolicy}\n      mappings:\n        - { name: buf, kind: anon, pages: ${pages}, populate: write }`);
  for (let b = 0; b < bystanders; b++) procs.push(`    - name: other${b}\n      mappings:\n        - { name: heap, kind: anon, pages: ${2 + int(6)}, populate: write }`);
  const steps: string[] = [];
  let alive = ['victim', ...Array.from({ length: bystanders }, (_, b) => `other${b}`)];
  let corrupted = 4;
  switch (variant) {
    case 0: // late kill: nothing at injection, SIGBUS AR at the next touch
      steps.push(`  - corrupt-pfn: victim.buf[${page}]
    expect:
      ret: 0
      log:
        - "Injecting memory failure at pfn {pfn}"
        - "Memory failure: {pfn}: recovery action for dirty LRU page: Recovered"
      signals: []
  - access: { process: victim, page: "victim.buf[${page}]", op: read }
    expect:
      signals:
        - { to: victim, signo: SIGBUS, code: BUS_MCEERR_AR, addr: "victim.buf[${page}]", lsb: 12 }`);
      break;
    case 1: // early kill: SIGBUS AO at injection
      steps.push(`  - corrupt-pfn: victim.buf[${page}]
    expect:
      ret: 0
      log:
        - "Memory failure: {pfn}: recovery action for dirty LRU page: Recovered"
      signals:
        - { to: victim, signo: SIGBUS, code: BUS_MCEERR_AO, addr: "victim.buf[${page}]", lsb: 12 }`);
      break;
    case 2: // madvise(MADV_HWPOISON) on the process's own page: AR to the caller
      steps.push(`  - madvise: { process: victim, page: "victim.buf[${page}]", advice: hwpoison }
    expect:
      ret: 0
      log:
        - "Memory failure: {pfn}: recovery action for dirty LRU page: Recovered"
      signals:
        - { to: victim, signo: SIGBUS, code: BUS_MCEERR_AR, addr: "victim.buf[${page}]", lsb: 12 }`);
      break;
    default: // two injections, one of them into a free page; a default-SIGBUS victim dies at the touch
      corrupted = 8;
      steps.push(`  - corrupt-pfn: free[0]
    expect:
      ret: 0
      log:
        - "Memory failure: {pfn}: recovery action for free buddy page: Recovered"
  - corrupt-pfn: victim.buf[${other}]
    expect:
      ret: 0
      signals: []
  - access: { process: victim, page: "victim.buf[${other}]", op: write }
    expect:
      signals:
        - { to: victim, signo: SIGBUS, code: BUS_MCEERR_AR, addr: "victim.buf[${other}]", lsb: 12 }`);
      break;
  }
  if (variant === 3) alive = alive.filter((p) => p !== 'victim');
  const end = variant === 3 ? `  killed: ["victim:SIGBUS"]\n` : '';
  const sigbus = variant === 3 ? '      sigbus: default' : '      sigbus: handler';
  const text = `# Generated typical case ${i} (bench/gen.ts).
name: typical ${i}
tags: [bench]
machine:
  memory: ${[1, 4, 16, 64][int(4)]}G
workload:
  processes:
${procs.join('\n')}
steps:
${steps.join('\n')}
expect:
${end}  alive: [${alive.join(', ')}]
  meminfo: { HardwareCorrupted: ${corrupted} }
`;
  return variant === 3 ? text.replace('      sigbus: handler', sigbus) : text;
}

/** Writes n typical cases under dir (100 per subdirectory); returns the directory. */
export function writeTypicalCases(dir: string, n: number): string {
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `case-${String(i).padStart(5, '0')}.yaml`), typicalCase(i));
  }
  return dir;
}
