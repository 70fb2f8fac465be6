// Log-line templates: expectations name pages and processes, not raw numbers, because pfns and
// pids differ between targets. `{pfn}` is the pfn of the page the step acts on; `{pfn:REF}`,
// `{addr:REF}`, `{phys:REF}` name any page; `{pid:PROC}`, `{tid:PROC.THREAD}`, `{comm:PROC}`.
// Formats follow printk: {pfn}, {addr:REF}, {phys:REF} print %#lx (0x...); {hexpfn:REF},
// {hexaddr:REF}, {hexphys:REF} print plain %lx (e.g. "fault at %lx").
import type { Expectation, StepConfig } from '../case/schema.js';
import type { QueryAnswers } from '../targets/target.js';

const TEMPLATE = /\{(hex)?(pfn|addr|phys|pid|tid|comm)(?::([^}]+))?\}/g;

/** Page references named by a step's action and expectations (for resolving before it runs). */
export function collectRefs(step: StepConfig): string[] {
  const out = new Set<string>();
  const visit = (v: unknown, key?: string): void => {
    if (typeof v === 'string') {
      if (key && ['corrupt-pfn', 'unpoison-pfn', 'hard-offline', 'soft-offline', 'page', 'addr', 'swap-out'].includes(key) && isPageRef(v)) out.add(v);
      for (const m of v.matchAll(TEMPLATE)) if (m[3] && (m[2] === 'pfn' || m[2] === 'addr' || m[2] === 'phys')) out.add(m[3]);
    } else if (Array.isArray(v)) {
      for (const x of v) visit(x, key);
    } else if (v && typeof v === 'object') {
      for (const [kk, vv] of Object.entries(v)) {
        if (kk === 'kpageflags' || kk === 'data' || kk === 'pagemap') for (const ref of Object.keys(vv as object)) out.add(ref);
        visit(vv, kk);
      }
    }
  };
  visit(step);
  return [...out];
}

export function expectRefs(e: Expectation | undefined): string[] {
  return e ? collectRefs({ expect: e } as StepConfig) : [];
}

export function isPageRef(v: string): boolean {
  return /^(?:[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*(?:\[\d+\])?(?:\+\w+)?|file:[\w.-]+(?:\[\d+\])?|pfn:\w+|phys:\w+|free(?:\[\d+\])?|free-huge(?:\[\d+\])?|zero|kernel(?:\[\d+\])?|slab(?:\[\d+\])?)$/.test(v);
}

function strip0x(s: string): string {
  return s.replace(/^0x/, '');
}

/** Expands the templates of a log pattern; throws when a name cannot be resolved. */
export function expandTemplate(pattern: string, refs: QueryAnswers['refs'], primary: string | undefined): string {
  return pattern.replace(TEMPLATE, (whole, plain: string | undefined, kind: string, name: string | undefined) => {
    const r = refs ?? {};
    if (kind === 'pid' || kind === 'tid' || kind === 'comm') {
      const key = kind === 'comm' ? (r[`pid:${name}`] ? `pid:${name}` : `tid:${name}`) : kind === 'pid' ? `pid:${name}` : `tid:${name?.includes('.') ? name : `${name}.main`}`;
      const e = r[key];
      if (!e) throw new Error(`unknown process in template ${whole}`);
      return String(kind === 'comm' ? e.comm : kind === 'pid' ? e.pid : e.tid);
    }
    const ref = name ?? primary;
    if (!ref) throw new Error(`template ${whole} needs a page: the step acts on none`);
    const e = r[ref];
    const v = e?.[kind as 'pfn' | 'addr' | 'phys'];
    if (v === undefined) throw new Error(`template ${whole}: ${ref} has no ${kind}`);
    return plain ? strip0x(v) : v;
  });
}

/** Does a log line match a pattern (exact text, or /regex/)? */
export function lineMatches(line: string, pattern: string): boolean {
  const m = /^\/(.*)\/([a-z]*)$/.exec(pattern);
  if (m) return new RegExp(m[1]!, m[2]).test(line);
  return line === pattern;
}
