/**
 * Model of arch/x86/kernel/cpu/mce/genpool.c: the lock-less pool that carries
 * records from the #MC handler / poller (mce_log → mce_gen_pool_add) to
 * process context, where mce_gen_pool_process() runs the
 * x86_mce_decoder_chain notifiers on each record in arrival order.
 */
import type { Mce } from './internal.js';

/** mce_cmp(): two records describe different errors. */
export function mceCmp(a: Mce, b: Mce): boolean {
  return a.bank !== b.bank || a.status !== b.status || a.addr !== b.addr || a.misc !== b.misc;
}

export class MceGenPool {
  /** mce_event_llist, oldest first. */
  private events: Mce[] = [];

  /** mce_gen_pool_add(): 0, or -ENOMEM when the pool is full (MCE_POOLSZ records). */
  add(m: Mce): number {
    if (this.events.length >= MCE_POOLSZ) return -12;
    this.events.push({ ...m });
    return 0;
  }

  empty(): boolean {
    return this.events.length === 0;
  }

  /** llist_del_all + reverse: the records to run the chain on, oldest first. */
  takeAll(): Mce[] {
    const all = this.events;
    this.events = [];
    return all;
  }

  /**
   * mce_gen_pool_prepare_records() (used by mce_panic): takes every pending
   * record off the pool, squeezing out duplicates (is_duplicate_mce_record()).
   * The records are not given back: after a fake panic nobody processes them.
   */
  prepareRecords(): Mce[] {
    const all = this.takeAll();
    return all.filter((m, i) => !all.slice(i + 1).some((o) => !mceCmp(m, o)));
  }
}

/** MCE_POOLSZ: 2 * PAGE_SIZE / sizeof(struct mce_evt_llist). */
export const MCE_POOLSZ = 64;
