// --coverage: which error_states[] rows and severity rows the run hit (like mce-test's
// severities-coverage), printed after the run.
import type { CaseResult, Reporter } from '../result.js';
import { ERROR_STATES, MF_MSG } from '../../tsrc/kernel/mm/memory-failure.js';
import { SEVERITIES } from '../../tsrc/kernel/arch/x86/kernel/cpu/mce/severity.js';
import { severityRowName } from '../../tsrc/kernel/arch/x86/kernel/cpu/mce/core.js';

/** Rows no case can reach through the handler, and why (each is hit by the unit tests). */
const UNREACHABLE: Record<string, string> = {
  'severity 01: Invalid': 'the handler and the poller only grade banks with MCi_STATUS.VAL set; test/severity covers it',
  'severity 07: In kernel and no restart IP': 'the recoverable-kernel context needs RIPV and EIPV (mc_recoverable()), so RIPV=0 cannot match there; test/severity covers it',
  DAX: 'ZONE_DEVICE (fsdax/devdax) memory is not modelled',
};

export class CoverageReporter implements Reporter {
  constructor(private readonly write: (s: string) => void) {}
  onCase(): void {}
  onEnd(_s: unknown, all: CaseResult[]): void {
    const hitStates = new Set(all.flatMap((r) => r.coverage?.errorStates ?? []));
    const hitSev = new Set(all.flatMap((r) => r.coverage?.severities ?? []));
    const lines = ['# coverage: memory_failure result types (action_page_types[])'];
    const types = new Set<string>([...ERROR_STATES.map((e) => e.type), ...Object.keys(MF_MSG)]);
    const why = (key: string, hit: boolean): string => (!hit && UNREACHABLE[key] ? ` (unreachable: ${UNREACHABLE[key]})` : '');
    for (const t of types) lines.push(`#   ${hitStates.has(t) ? 'hit ' : 'MISS'} ${t} (${MF_MSG[t as keyof typeof MF_MSG]})${ERROR_STATES.some((e) => e.type === t) ? ' [error_states row]' : ''}${why(t, hitStates.has(t))}`);
    // Every row of the current severities[] table (like debugfs mce/severities-coverage), then rows of other tables hit.
    const rows = SEVERITIES.map((_, i) => severityRowName('current', i));
    lines.push(`# coverage: severity rows (severities[]): ${rows.filter((r) => hitSev.has(r)).length}/${rows.length} hit`);
    for (const r of rows) lines.push(`#   ${hitSev.has(r) ? 'hit ' : 'MISS'} ${r}${why(r, hitSev.has(r))}`);
    for (const s of [...hitSev].filter((x) => !rows.includes(x)).sort()) lines.push(`#   hit  ${s}`);
    this.write(`${lines.join('\n')}\n`);
  }
}
