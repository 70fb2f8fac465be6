// Sizes in cases: numbers of bytes, or strings with binary suffixes ("4K", "2M", "64G", "4T").
const UNITS: Record<string, bigint> = { '': 1n, B: 1n, K: 1n << 10n, M: 1n << 20n, G: 1n << 30n, T: 1n << 40n, P: 1n << 50n };

export function parseSize(v: number | string): bigint {
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  const m = /^\s*(\d+)(?:\.(\d+))?\s*([KMGTP]?)(?:i?B)?\s*$/i.exec(v) ?? /^\s*(\d+)()\s*(B)\s*$/i.exec(v);
  if (!m) throw new Error(`not a size: ${v}`);
  const unit = UNITS[(m[3] ?? '').toUpperCase()] ?? 1n;
  const whole = BigInt(m[1]!) * unit;
  if (!m[2]) return whole;
  const frac = BigInt(m[2]);
  return whole + (frac * unit) / 10n ** BigInt(m[2].length);
}
