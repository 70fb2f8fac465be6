// Human progress on stderr: a live status line on a TTY, one line per case in CI, and always
// the closing "N passed, N failed, N skipped" line.
import { styleText } from 'node:util';
import type { CaseResult, Reporter, RunSummary } from '../result.js';
import { isFailure } from '../result.js';

export class ProgressReporter implements Reporter {
  private done = 0;
  private total = 0;
  private failed = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly live: boolean,
    private readonly perCase: boolean,
  ) {}

  private color(fmt: Parameters<typeof styleText>[0], s: string): string {
    return this.stream.isTTY && !process.env.NO_COLOR ? styleText(fmt, s) : s;
  }

  onStart(info: { total: number }): void {
    this.total = info.total;
  }

  onCase(r: CaseResult): void {
    this.done++;
    const bad = isFailure(r) && r.status !== 'todo';
    if (bad) this.failed++;
    if (this.live) {
      this.stream.write(`\r\x1b[K[${this.done}/${this.total}] ${this.failed ? this.color('red', `${this.failed} failed `) : ''}${r.id}`);
      if (bad) this.stream.write(`\r\x1b[K${this.color('red', 'FAIL')} ${r.id}\n`);
    } else if (this.perCase || bad) {
      const tag = bad ? 'FAIL' : r.status === 'skip' ? 'SKIP' : r.status === 'todo' ? 'TODO' : 'PASS';
      this.stream.write(`${tag} ${r.id}${r.reason && r.status !== 'pass' ? ` (${r.reason})` : ''}\n`);
    }
  }

  onEnd(s: RunSummary): void {
    if (this.live) this.stream.write('\r\x1b[K');
    const line = `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped${s.todo ? `, ${s.todo} todo` : ''}`;
    this.stream.write(`${s.failed ? this.color('red', line) : this.color('green', line)} (${(s.durationMs / 1000).toFixed(2)}s, seed ${s.seed})\n`);
  }
}
