/** mce-inject input language: records, parser, canonical printer, validation. */
export { MceParseError, tokenize, KEYWORDS } from './lexer.js';
export type { Keyword, Token } from './lexer.js';
export { parseMce, STATUS_ATOMS, MCGSTATUS_ATOMS } from './parser.js';
export { printRecord, printRecords } from './printer.js';
export { emptyRecord, isException, groupInjections, FIELD_BITS } from './record.js';
export type { MceRecord, InjectContext, RaiseMode, Injection } from './record.js';
export { validateRecords } from './validate.js';
export type { InjectTarget, RecordError } from './validate.js';
export { injectionToMachine } from './to-machine.js';
export type { MachineInjection } from './to-machine.js';
