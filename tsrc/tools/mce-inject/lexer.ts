/**
 * Scanner for mce-inject's input language (andikleen/mce-inject mce.lex):
 * `#` comments to end of line, blanks and newlines separate tokens, keywords
 * are case-insensitive, numbers are C constants (0x hex, leading-0 octal,
 * decimal) read as unsigned 64-bit, punctuation is `: { } < >`, any other
 * identifier is a SYMBOL. Differences from the C scanner, on purpose: line
 * numbers stay right after comments, `\r` is a blank, and an octal constant
 * with 8/9 or a number above 2^64-1 is an error rather than silently cut.
 */

export class MceParseError extends Error {
  constructor(readonly line: number, readonly col: number, readonly detail: string) {
    super(`${line}:${col}: ${detail}`);
    this.name = 'MceParseError';
  }
}

/** Every keyword of the language. Values of the symbolic ones are in parser.ts. */
export const KEYWORDS = [
  'MCE', 'CPU', 'BANK', 'STATUS', 'MCGSTATUS', 'RIP', 'TSC', 'TIME', 'SOCKETID', 'APICID', 'MCGCAP', 'ADDR', 'MISC',
  'PROCESSOR', 'NOBROADCAST', 'IRQBROADCAST', 'NMIBROADCAST', 'HOLD', 'IN_IRQ', 'IN_PROC', 'POLL', 'EXCP',
  'MACHINE', 'CHECK', 'EXCEPTION',
  'CORRECTED', 'UNCORRECTED', 'FATAL', 'VAL', 'OVER', 'UC', 'EN', 'PCC', 'S', 'AR', 'TES_YELLOW', 'UCNA', 'SRAO', 'SRAR',
  'RIPV', 'EIPV', 'MCIP', 'LMCES', 'TES_P', 'SEAM_NR',
] as const;
export type Keyword = (typeof KEYWORDS)[number];
const KEYWORD_SET: ReadonlySet<string> = new Set(KEYWORDS);

export type Token =
  | { kind: 'number'; value: bigint; text: string; line: number; col: number }
  | { kind: 'keyword'; value: Keyword; text: string; line: number; col: number }
  | { kind: 'symbol'; value: string; text: string; line: number; col: number }
  | { kind: 'punct'; value: ':' | '{' | '}' | '<' | '>'; text: string; line: number; col: number }
  | { kind: 'eof'; text: string; line: number; col: number };

const MAX_U64 = (1n << 64n) - 1n;
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isHex = (c: string): boolean => isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
const isIdStart = (c: string): boolean => c === '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isId = (c: string): boolean => isIdStart(c) || isDigit(c);

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const at = (k: number): string => src[k] ?? '';
  while (i < src.length) {
    const c = at(i);
    const col = i - lineStart + 1;
    if (c === '\n') {
      i++;
      line++;
      lineStart = i;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < src.length && at(i) !== '\n') i++;
    } else if (isDigit(c)) {
      let j = i;
      let value: bigint;
      if (c === '0' && (at(i + 1) === 'x' || at(i + 1) === 'X') && isHex(at(i + 2))) {
        j = i + 2;
        while (isHex(at(j))) j++;
        value = BigInt('0x' + src.slice(i + 2, j));
      } else if (c === '0' && isDigit(at(i + 1))) {
        j = i + 1;
        while (isDigit(at(j))) j++;
        const digits = src.slice(i + 1, j);
        const bad = [...digits].findIndex((d) => d === '8' || d === '9');
        if (bad >= 0) throw new MceParseError(line, col + 1 + bad, `invalid digit '${digits[bad]}' in octal number '${src.slice(i, j)}'`);
        value = BigInt('0o' + digits);
      } else {
        while (isDigit(at(j))) j++;
        value = BigInt(src.slice(i, j));
      }
      if (value > MAX_U64) throw new MceParseError(line, col, `number '${src.slice(i, j)}' does not fit in 64 bits`);
      out.push({ kind: 'number', value, text: src.slice(i, j), line, col });
      i = j;
    } else if (isIdStart(c)) {
      let j = i + 1;
      while (isId(at(j))) j++;
      const text = src.slice(i, j);
      const up = text.toUpperCase();
      if (KEYWORD_SET.has(up)) out.push({ kind: 'keyword', value: up as Keyword, text, line, col });
      else out.push({ kind: 'symbol', value: text, text, line, col });
      i = j;
    } else if (c === ':' || c === '{' || c === '}' || c === '<' || c === '>') {
      out.push({ kind: 'punct', value: c, text: c, line, col });
      i++;
    } else {
      const cp = src.codePointAt(i) ?? 0;
      const ch = String.fromCodePoint(cp);
      const shown = cp < 0x20 || cp === 0x7f ? `\\x${cp.toString(16).padStart(2, '0')}` : ch;
      throw new MceParseError(line, col, `unrecognized character '${shown}'`);
    }
  }
  out.push({ kind: 'eof', text: 'end of input', line, col: i - lineStart + 1 });
  return out;
}
