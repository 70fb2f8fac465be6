// Target registry: name -> system under test.
import { SimTarget } from './sim/index.js';
import type { SystemUnderTest } from './target.js';

export const TARGETS = ['sim', 'qemu'] as const;

export function makeTarget(name: string): SystemUnderTest {
  if (name === 'sim') return new SimTarget();
  throw new Error(`unknown target "${name}"`);
}
