/**
 * Model of drivers/ras/cec.c, the RAS Correctable Errors Collector: a sorted
 * array (one page: 512 elements) of pfns with a 10-bit error count and a
 * 2-bit generation. Every corrected memory error with a usable address is
 * counted on its pfn; when a pfn's count reaches action_threshold the page is
 * soft-offlined through memory_failure_queue(pfn, MF_SOFT_OFFLINE) and the
 * element is dropped. Spring cleaning (every CLEAN_ELEMS insertions and every
 * decay_interval) ages the generation; a full array evicts the element with
 * the lowest generation|count.
 */
import type { Kernel } from '../../kernel.js';
import { MF_SOFT_OFFLINE, memoryFailureQueue } from '../../mm/memory-failure.js';

const DECAY_BITS = 2;
const DECAY_MASK = (1 << DECAY_BITS) - 1;
const MAX_ELEMS = 4096 / 8;
const CLEAN_ELEMS = MAX_ELEMS >> DECAY_BITS;
const COUNT_BITS = 12 - DECAY_BITS;
/** COUNT_MASK: the largest count (and the generic default action_threshold). */
export const CEC_COUNT_MASK = (1 << COUNT_BITS) - 1;
export const CEC_DECAY_DEFAULT_INTERVAL = 24 * 60 * 60;

interface Elem {
  pfn: number;
  decay: number;
  count: number;
}

export class Cec {
  private readonly array: Elem[] = [];
  private decayCount = 0;
  private lastDecay: number;
  cesEntered = 0;
  pfnsPoisoned = 0;
  decaysDone = 0;

  /**
   * cec_init(): action_threshold is COUNT_MASK, lowered to 2 on Intel since
   * "RAS/CEC: Reduce offline page threshold for Intel systems" (≈v6.5).
   */
  constructor(private readonly k: Kernel, public actionThreshold: number, public decayInterval = CEC_DECAY_DEFAULT_INTERVAL) {
    this.lastDecay = k.now;
    k.log.print('info', 'RAS: Correctable Errors collector initialized.');
  }

  /** do_spring_cleaning(). */
  private springCleaning(): void {
    for (const e of this.array) if (e.decay) e.decay--;
    this.decayCount = 0;
    this.decaysDone++;
  }

  /** cec_work_fn(): the delayed work that decays every decay_interval seconds. */
  private catchUpDecay(): void {
    while (this.k.now - this.lastDecay >= this.decayInterval) {
      this.lastDecay += this.decayInterval;
      this.springCleaning();
    }
  }

  /** cec_add_elem(): 0 counted, >0 threshold reached (page queued for soft offline). */
  addElem(pfn: number): number {
    this.catchUpDecay();
    this.cesEntered++;
    if (this.array.length === MAX_ELEMS) {
      // del_lru_elem_unlocked(): the smallest generation|count goes.
      let min = 0;
      const full = (e: Elem): number => (e.decay << COUNT_BITS) | e.count;
      for (let i = 1; i < this.array.length; i++) if (full(this.array[i]!) < full(this.array[min]!)) min = i;
      this.array.splice(min, 1);
    }
    let to = this.array.findIndex((e) => e.pfn >= pfn);
    if (to < 0) to = this.array.length;
    let e = this.array[to];
    if (!e || e.pfn !== pfn) {
      e = { pfn, decay: 0, count: 0 };
      this.array.splice(to, 0, e);
    }
    e.decay = DECAY_MASK;
    e.count = Math.min(CEC_COUNT_MASK, e.count + 1);
    if (e.count >= this.actionThreshold) {
      if (!this.k.alloc.pfnToPage(pfn)) {
        this.k.log.print('warn', `RAS: CEC: Invalid pfn: 0x${pfn.toString(16)}`);
      } else {
        this.k.log.print('err', `RAS: Soft-offlining pfn: 0x${pfn.toString(16)}`);
        memoryFailureQueue(this.k, pfn, MF_SOFT_OFFLINE, 0);
        this.pfnsPoisoned++;
      }
      this.array.splice(to, 1);
      return 1;
    }
    this.decayCount++;
    if (this.decayCount >= CLEAN_ELEMS) this.springCleaning();
    return 0;
  }

  /** The debugfs array view: pfn -> count. */
  counts(): Map<number, number> {
    return new Map(this.array.map((e) => [e.pfn, e.count]));
  }
}
