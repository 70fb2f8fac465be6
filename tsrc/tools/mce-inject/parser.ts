/**
 * Parser for mce-inject's input language (grammar of mce.y, mce-test.md §4):
 *
 *   input  := { start term { term } }
 *   start  := CPU n | CPU n bank | MCE
 *           | CPU n ':' MACHINE CHECK EXCEPTION ':' mcgstatus BANK b ':' status
 *   term   := STATUS {atom|n} | MCGSTATUS {atom|n} | BANK n | TSC n | TIME n
 *           | SOCKETID n | APICID n | MCGCAP n | ADDR n | MISC n
 *           | RIP ip | RIP cs ':' ip | RIP cs ':' '<' ip '>' '{' SYMBOL '}'
 *           | PROCESSOR vendor ':' cpuid
 *           | NOBROADCAST | IRQBROADCAST | NMIBROADCAST | HOLD | IN_IRQ | IN_PROC | POLL | EXCP
 *
 * Semantics kept from mce-inject: a record needs at least one term; STATUS
 * and MCGSTATUS assign (the listed atoms OR'ed), ADDR/MISC OR ADDRV/MISCV into
 * whatever STATUS holds at that moment (so a later STATUS drops them); later
 * IN_IRQ/IN_PROC and POLL/EXCP replace earlier ones. Narrow `struct mce`
 * fields (BANK, CPU, CS, ...) reject values that would be truncated instead
 * of cutting them silently. The panic-line start form sets the CPU the record
 * is injected on (mce-inject only set m.cpu and injected on CPU 0).
 */
import { MceParseError, tokenize } from './lexer.js';
import type { Keyword, Token } from './lexer.js';
import { FIELD_BITS, emptyRecord } from './record.js';
import type { MceRecord } from './record.js';

const bit = (n: number): bigint => 1n << BigInt(n);
const VAL = bit(63), OVER = bit(62), UC = bit(61), EN = bit(60), MISCV = bit(59), ADDRV = bit(58);
const PCC = bit(57), S = bit(56), AR = bit(55), TES_YELLOW = bit(54);

/** Symbolic MCi_STATUS atoms (mce.lex KEYVAL). */
export const STATUS_ATOMS: Readonly<Partial<Record<Keyword, bigint>>> = {
  VAL, OVER, UC, EN, PCC, S, AR, TES_YELLOW,
  CORRECTED: VAL | EN,
  UNCORRECTED: VAL | UC | EN,
  FATAL: VAL | UC | EN | PCC,
  UCNA: 0n,
  SRAO: S,
  SRAR: S | AR,
};

/** Symbolic MCG_STATUS atoms. */
export const MCGSTATUS_ATOMS: Readonly<Partial<Record<Keyword, bigint>>> = {
  RIPV: bit(0), EIPV: bit(1), MCIP: bit(2), LMCES: bit(3), TES_P: bit(11), SEAM_NR: bit(12),
};

export const MCI_STATUS_ADDRV = ADDRV;
export const MCI_STATUS_MISCV = MISCV;

const TERM_KEYWORDS: ReadonlySet<Keyword> = new Set<Keyword>([
  'STATUS', 'MCGSTATUS', 'BANK', 'TSC', 'TIME', 'SOCKETID', 'APICID', 'MCGCAP', 'RIP', 'ADDR', 'MISC', 'PROCESSOR',
  'NOBROADCAST', 'IRQBROADCAST', 'NMIBROADCAST', 'HOLD', 'IN_IRQ', 'IN_PROC', 'POLL', 'EXCP',
]);

const describe = (t: Token): string =>
  t.kind === 'eof' ? 'end of input' : t.kind === 'number' ? `number ${t.text}` : t.kind === 'punct' ? `'${t.text}'` : `'${t.text}'`;

class Parser {
  private pos = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.pos] ?? this.toks[this.toks.length - 1]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private fail(t: Token, msg: string): never {
    throw new MceParseError(t.line, t.col, msg);
  }

  private isKw(t: Token, k: Keyword): boolean {
    return t.kind === 'keyword' && t.value === k;
  }

  private number(after: string): { value: bigint; tok: Token } {
    const t = this.peek();
    if (t.kind !== 'number') this.fail(t, `expected a number after ${after}, found ${describe(t)}`);
    this.pos++;
    return { value: t.value, tok: t };
  }

  private narrow(after: string, field: keyof typeof FIELD_BITS): number {
    const { value, tok } = this.number(after);
    const bits = FIELD_BITS[field];
    if (value >= 1n << BigInt(bits)) this.fail(tok, `${after} value ${tok.text} does not fit in ${bits} bits`);
    return Number(value);
  }

  private punct(p: string, ctx: string): void {
    const t = this.peek();
    if (t.kind !== 'punct' || t.value !== p) this.fail(t, `expected '${p}' ${ctx}, found ${describe(t)}`);
    this.pos++;
  }

  private keyword(k: Keyword, ctx: string): void {
    const t = this.peek();
    if (!this.isKw(t, k)) this.fail(t, `expected ${k} ${ctx}, found ${describe(t)}`);
    this.pos++;
  }

  parse(): MceRecord[] {
    const out: MceRecord[] = [];
    while (this.peek().kind !== 'eof') out.push(this.record());
    return out;
  }

  private record(): MceRecord {
    const r = emptyRecord();
    const t = this.next();
    let startDesc: string;
    if (this.isKw(t, 'MCE')) {
      startDesc = 'MCE';
    } else if (this.isKw(t, 'CPU')) {
      r.cpu = this.narrow('CPU', 'cpu');
      startDesc = `CPU ${r.cpu}`;
      const n = this.peek();
      if (n.kind === 'number') {
        r.bank = this.narrow(`CPU ${r.cpu}`, 'bank');
        startDesc += ` ${r.bank}`;
      } else if (n.kind === 'punct' && n.value === ':') {
        // Kernel panic line: CPU n: Machine Check Exception: mcg Bank b: status
        this.pos++;
        this.keyword('MACHINE', 'in "CPU n: Machine Check Exception:"');
        this.keyword('CHECK', 'in "CPU n: Machine Check Exception:"');
        this.keyword('EXCEPTION', 'in "CPU n: Machine Check Exception:"');
        this.punct(':', 'after "Machine Check Exception"');
        r.mcgStatus = this.number('"Machine Check Exception:"').value;
        this.keyword('BANK', 'after the MCG status of a panic line');
        r.bank = this.narrow('BANK', 'bank');
        this.punct(':', `after BANK ${r.bank}`);
        r.status = this.number(`BANK ${r.bank}:`).value;
        startDesc = 'the panic line';
      }
    } else {
      this.fail(t, `expected CPU or MCE to start a record, found ${describe(t)}`);
    }
    const first = this.peek();
    if (!(first.kind === 'keyword' && TERM_KEYWORDS.has(first.value))) {
      this.fail(first, `expected a record field after ${startDesc}, found ${describe(first)}`);
    }
    for (;;) {
      const n = this.peek();
      if (n.kind !== 'keyword' || !TERM_KEYWORDS.has(n.value)) break;
      this.term(r);
    }
    // Anything that is neither a field nor a new record is an error here.
    const n = this.peek();
    if (!(n.kind === 'eof' || this.isKw(n, 'CPU') || this.isKw(n, 'MCE'))) {
      this.fail(n, `unexpected ${describe(n)}: expected a record field, CPU or MCE`);
    }
    return r;
  }

  private atoms(table: Readonly<Partial<Record<Keyword, bigint>>>): bigint {
    let v = 0n;
    for (;;) {
      const t = this.peek();
      if (t.kind === 'number') v |= t.value;
      else if (t.kind === 'keyword' && table[t.value] !== undefined) v |= table[t.value]!;
      else return v;
      this.pos++;
    }
  }

  private term(r: MceRecord): void {
    const t = this.next();
    if (t.kind !== 'keyword') this.fail(t, `expected a record field, found ${describe(t)}`);
    switch (t.value) {
      case 'STATUS':
        r.status = this.atoms(STATUS_ATOMS);
        return;
      case 'MCGSTATUS':
        r.mcgStatus = this.atoms(MCGSTATUS_ATOMS);
        return;
      case 'BANK':
        r.bank = this.narrow('BANK', 'bank');
        return;
      case 'TSC':
        r.tsc = this.number('TSC').value;
        return;
      case 'TIME':
        r.time = this.number('TIME').value;
        return;
      case 'SOCKETID':
        r.socketId = this.narrow('SOCKETID', 'socketId');
        return;
      case 'APICID':
        r.apicId = this.narrow('APICID', 'apicId');
        return;
      case 'MCGCAP':
        r.mcgCap = this.number('MCGCAP').value;
        return;
      case 'ADDR':
        r.addr = this.number('ADDR').value;
        r.status |= ADDRV;
        return;
      case 'MISC':
        r.misc = this.number('MISC').value;
        r.status |= MISCV;
        return;
      case 'RIP':
        this.rip(r);
        return;
      case 'PROCESSOR': {
        r.cpuVendor = this.narrow('PROCESSOR', 'cpuVendor');
        this.punct(':', 'between PROCESSOR vendor and cpuid');
        r.cpuid = this.narrow('PROCESSOR vendor:', 'cpuid');
        return;
      }
      case 'NOBROADCAST':
        r.noBroadcast = true;
        return;
      case 'IRQBROADCAST':
        r.irqBroadcast = true;
        return;
      case 'NMIBROADCAST':
        r.nmiBroadcast = true;
        return;
      case 'HOLD':
        r.hold = true;
        return;
      case 'IN_IRQ':
        r.context = 'irq';
        return;
      case 'IN_PROC':
        r.context = 'process';
        return;
      case 'POLL':
        r.raise = 'poll';
        return;
      case 'EXCP':
        r.raise = 'excp';
        return;
      default:
        this.fail(t, `expected a record field, found ${describe(t)}`);
    }
  }

  /** RIP ip | RIP cs:ip | RIP cs:<ip>{symbol} */
  private rip(r: MceRecord): void {
    const first = this.number('RIP');
    const n = this.peek();
    if (!(n.kind === 'punct' && n.value === ':')) {
      r.ip = first.value;
      return;
    }
    if (first.value > 0xffn) this.fail(first.tok, `RIP code segment ${first.tok.text} does not fit in 8 bits`);
    r.cs = Number(first.value);
    this.pos++;
    const a = this.peek();
    if (a.kind === 'punct' && a.value === '<') {
      this.pos++;
      r.ip = this.number('RIP cs:<').value;
      this.punct('>', 'after RIP cs:<ip');
      this.punct('{', 'after RIP cs:<ip>');
      const sym = this.peek();
      if (sym.kind !== 'symbol') this.fail(sym, `expected a symbol name inside '{ }', found ${describe(sym)}`);
      this.pos++;
      this.punct('}', 'after the RIP symbol');
      return;
    }
    r.ip = this.number('RIP cs:').value;
  }
}

/** Parse mce-inject input into records; throws MceParseError (line/col 1-based). */
export function parseMce(src: string): MceRecord[] {
  return new Parser(tokenize(src)).parse();
}
