// JSON for scripts: the summary and every case with its assertions.
import type { CaseResult, Reporter, RunSummary } from '../result.js';
import { writeFileAtomic } from './atomic.js';

export class JsonReporter implements Reporter {
  constructor(private readonly file: string) {}
  onCase(): void {}
  onEnd(s: RunSummary, all: CaseResult[]): void {
    const cases = all.map(({ log: _log, trail: _trail, ...rest }) => rest);
    writeFileAtomic(this.file, `${JSON.stringify({ summary: s, cases }, null, 2)}\n`);
  }
}
