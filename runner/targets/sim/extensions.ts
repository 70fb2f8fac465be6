// Extension points of the sim target: parts of the model that live in their own modules
// (hugetlb, THP, KSM, the x86 MCE handler, corrected-error consumers) register their mapping
// builders and step actions here, so world.ts and steps.ts stay small.
import type { StepConfig } from '../../case/schema.js';
import type { StepObservation } from '../target.js';
import type { World } from './world.js';

/** A step action: performs the step on the world and returns its return value (or undefined). */
export type StepAction = (w: World, step: StepConfig, obs: StepObservation) => number | undefined;

const stepActions = new Map<string, StepAction>();
const setups: ((w: World) => void)[] = [];

export function registerStepAction(name: string, fn: StepAction): void {
  stepActions.set(name, fn);
}

export function stepAction(name: string): StepAction | undefined {
  return stepActions.get(name);
}

/** Registers a function run on every new World (e.g. to add mapping builders or hooks). */
export function registerWorldSetup(fn: (w: World) => void): void {
  setups.push(fn);
}

export function setupExtensions(w: World): void {
  for (const fn of setups) fn(w);
}
