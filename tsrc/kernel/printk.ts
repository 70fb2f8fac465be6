// The kernel log: a ring of lines with the kernel's exact formats. Each subsystem's pr_fmt
// prefix is applied by the caller's logger (e.g. "Memory failure: " for mm/memory-failure.c).

/**
 * The kernel's `%#lx`: lowercase hex with 0x. Unlike C's printf, lib/vsprintf.c number() adds the
 * 0x prefix to zero too (only octal drops it for zero): pfn 0 prints as "0x0", as seen on the
 * Debian 6.12 kernel under QEMU.
 */
export function hexPfn(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** printf's `%lx`: lowercase hex without prefix. */
export function hex(n: number | bigint): string {
  return n.toString(16);
}

export interface LogLine {
  seq: number;
  level: 'emerg' | 'err' | 'warn' | 'info';
  text: string;
}

export class KernelLog {
  readonly lines: LogLine[] = [];
  private seq = 0;
  /** Rate-limit state per key: timestamps (model seconds) of recent prints. */
  private rl = new Map<string, number[]>();
  private once = new Set<string>();

  print(level: LogLine['level'], text: string): void {
    this.lines.push({ seq: this.seq++, level, text });
  }

  /** pr_info_once(): prints a given text once per boot. */
  printOnce(level: LogLine['level'], text: string): void {
    if (this.once.has(text)) return;
    this.once.add(text);
    this.print(level, text);
  }

  /** pr_*_ratelimited(): at most `burst` lines per `interval` seconds for a call site. */
  printRatelimited(key: string, now: number, interval: number, burst: number, level: LogLine['level'], text: string): void {
    const hist = (this.rl.get(key) ?? []).filter((t) => now - t < interval);
    if (hist.length >= burst) {
      this.rl.set(key, hist);
      return;
    }
    hist.push(now);
    this.rl.set(key, hist);
    this.print(level, text);
  }

  /** Lines printed since a mark. */
  since(mark: number): string[] {
    const out: string[] = [];
    for (let i = mark; i < this.lines.length; i++) out.push(this.lines[i]!.text);
    return out;
  }

  mark(): number {
    return this.lines.length;
  }
}
