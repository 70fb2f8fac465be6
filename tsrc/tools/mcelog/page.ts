/**
 * Model of the user-space page error threshold of mcelog (page.c +
 * leaky-bucket.c; rasdaemon's page-isolation does the same): corrected memory
 * errors with ADDRV are accounted per 4 KiB page in a leaky bucket
 * `memory-ce-threshold = count / period`; when a page's bucket reaches the
 * count, mcelog reports "Corrected memory errors on page <addr> exceed
 * threshold <count> in <period>" and (memory-ce-action = soft) writes the
 * address to /sys/devices/system/memory/soft_offline_page. A page that was
 * offlined never triggers again. mcelog's own messages go to its log, not to
 * the kernel log, so they are kept here.
 */

export interface PageThresholdConfig {
  count: number;
  /** Seconds; mcelog's shipped default is 24h. */
  period: number;
}

interface Bucket {
  count: number;
  tstamp: number;
}

export class PageThreshold {
  private readonly buckets = new Map<number, Bucket>();
  private readonly offlined = new Set<number>();
  /** mcelog's own log lines. */
  readonly messages: string[] = [];

  constructor(readonly cfg: PageThresholdConfig, private readonly offline: (phys: bigint) => number) {}

  /** __bucket_age(): leak `capacity` per elapsed period. */
  private age(b: Bucket, now: number): void {
    const diff = now - b.tstamp;
    if (diff >= this.cfg.period) {
      const leak = Math.floor((diff / this.cfg.period) * this.cfg.count);
      b.count = Math.max(0, b.count - leak);
      b.tstamp = now;
    }
  }

  /** account_page_error(): one corrected error at physical address `addr` at time `now`. */
  account(addr: bigint, now: number): boolean {
    const page = addr & ~0xfffn;
    const pfn = Number(page >> 12n);
    if (this.offlined.has(pfn)) return false;
    let b = this.buckets.get(pfn);
    if (!b) {
      b = { count: 0, tstamp: now };
      this.buckets.set(pfn, b);
    }
    this.age(b, now);
    b.count++;
    if (b.count < this.cfg.count) return false;
    b.count = 0;
    this.messages.push(`Corrected memory errors on page ${page.toString(16)} exceed threshold ${this.cfg.count} in ${this.cfg.period}s`);
    this.messages.push(`Offlining page ${page.toString(16)}`);
    const ret = this.offline(page);
    if (ret < 0) this.messages.push(`Offlining page ${page.toString(16)} failed: ${ret}`);
    else this.offlined.add(pfn);
    return true;
  }
}
