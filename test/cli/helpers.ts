// Shared helpers for the end-to-end tests: run the built CLI (bin/hwpsim.js -> dist/) through execa.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Parser, type FinalResults } from 'tap-parser';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'hwpsim.js');
/** Small valid cases (relative to ROOT, which is the cwd of every run). */
export const FIX = 'test/fixtures/cases';
export const BAD = 'test/fixtures/bad-cases';

export interface Run {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

/** Environment without CI variables (record refuses under CI) and without colour. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { CI: undefined, GITHUB_ACTIONS: undefined, NO_COLOR: '1', HWPSIM_TEST_WORKER_FAULT: undefined, ...extra };
}

export function start(args: readonly string[], env: Record<string, string> = {}): ResultPromise<{ reject: false; cwd: string; env: Record<string, string | undefined>; extendEnv: true; timeout: number; stdin: 'ignore'; stripFinalNewline: false }> {
  return execa('node', [BIN, ...args], { reject: false, cwd: ROOT, env: cleanEnv(env), extendEnv: true, timeout: 120_000, stdin: 'ignore', stripFinalNewline: false });
}

export async function hwpsim(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await start(args, env);
  return { exitCode: r.exitCode, signal: r.signal, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A fresh temporary directory (reports, copies of cases). */
export function tmp(prefix = 'hwpsim-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** `run` with reports in a temporary directory and no progress output; returns the run and the dir. */
export async function run(args: readonly string[], env: Record<string, string> = {}): Promise<Run & { dir: string }> {
  const dir = tmp();
  const r = await hwpsim(['run', '--quiet', '--reports-dir', dir, ...args], env);
  return { ...r, dir };
}

/** Parses TAP with tap-parser and returns its final results. */
export function parseTap(text: string): Promise<FinalResults> {
  return new Promise((resolve) => {
    const p = new Parser({ strict: false }, (res) => resolve(res));
    p.end(text);
  });
}

/** Names of the top-level test points of a TAP text, in order. */
export function testPoints(tap: string): string[] {
  return tap.split('\n').filter((l) => /^(not )?ok \d+/.test(l));
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}
