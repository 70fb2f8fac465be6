// The QEMU / real-kernel target: boots a Debian kernel (6.1 or 6.12, unpacked by
// scripts/qemu-setup.sh) under QEMU with the hwpsim initramfs and runs cases through the in-guest
// agent. Many cases share one boot; cases with real machine checks run in a boot of their own
// (after a hardware memory failure the kernel refuses unpoison until reboot), and a boot that
// panics is restarted for the cases it did not finish.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedCase } from '../../case/load.js';
import type { CaseObservation, RunContext, SystemUnderTest } from '../target.js';
import { buildInitramfs, initramfsWithProgram } from './build.js';
import { defaultCacheDir, findKernels, kernelForProfile, type KernelInfo } from './kernels.js';
import { injectInUserMode, planRecords, raisesMc } from './mce.js';
import { buildProgram, unsupportedReason, Unsupported, type Program } from './program.js';
import { toObservation, type CaseRun } from './report.js';
import { boot, type AgentEvent } from './vm.js';

export interface QemuTargetOptions {
  /** Where kernels and builds are cached. Default $HWPSIM_QEMU_CACHE or ./.qemu-cache. */
  cacheDir?: string;
  /** Guest memory. Default 1024 (MB). */
  memoryMb?: number;
  /** Boot-time allowance added to the per-case timeouts of a boot. Default 60 s (TCG). */
  bootTimeoutMs?: number;
  /** At most this many cases share one boot. Default 30. */
  casesPerBoot?: number;
  /** qemu-system-x86_64 binary. */
  qemu?: string;
  /** Progress / diagnostics (stderr in the CLI). */
  log?: (msg: string) => void;
}

export interface QemuTarget extends SystemUnderTest {
  /** Kernels found in the cache, by profile. */
  readonly kernels: KernelInfo[];
  /** Runs several cases, sharing boots where safe; results in the same order. */
  runBatch(cases: LoadedCase[], ctx: RunContext): Promise<CaseObservation[]>;
}

/** Why the target as a whole cannot run (no QEMU, no kernels), or undefined. */
export function qemuSetupProblem(cacheDir = defaultCacheDir()): string | undefined {
  if (findKernels(cacheDir).length === 0) return `no kernels in ${cacheDir}/kernels (run npm run qemu:setup)`;
  return undefined;
}

interface Job {
  c: LoadedCase;
  id: string;
  program: Program;
  profile: string;
  ownBoot: boolean;
  timeoutMs: number;
}

function profileFor(c: LoadedCase, ctx: RunContext): string {
  return ctx.kernel ?? c.config.machine?.kernel ?? '6.12';
}

function needsOwnBoot(c: LoadedCase): boolean {
  // The zero page (and the huge zero page) is shared by the whole boot: once poisoned, it stays.
  if (/\bzero\b|huge-zero|zero-page/.test(c.source)) return true;
  if ((c.config.steps ?? []).some((s) => s.mce || s.corrected)) return true;
  if (c.config.machine?.sysctl?.['vm.memory_failure_recovery'] === 0) return true;
  // unpoison_pr_info() is rate-limited (10 lines per 5 s, one state for the whole boot): cases
  // sharing a boot would lose each other's "Unpoison:" lines.
  if ((c.config.steps ?? []).some((s) => s['unpoison-pfn'] !== undefined)) return true;
  // Huge pages: a long shared boot leaves poisoned/dissolved huge pages behind, and 2 MiB of
  // contiguous free memory may no longer be found for the case's pool.
  if ((c.config.machine?.hugepages?.['2M'] ?? 0) > 0 && /tinjpage/.test(c.file)) return true;
  if ((c.config.steps ?? []).some((s) => s.sysctl?.['vm.memory_failure_recovery'] === 0)) return true;
  return false;
}

export function createQemuTarget(opts: QemuTargetOptions = {}): QemuTarget {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const memoryMb = opts.memoryMb ?? 1024;
  const kernels = findKernels(cacheDir);
  const say = opts.log ?? ((): void => undefined);

  const cannotRun = (c: LoadedCase, ctx: RunContext): string | undefined => {
    if (kernels.length === 0) return `no kernels in ${cacheDir}/kernels (run npm run qemu:setup)`;
    const profile = profileFor(c, ctx);
    const k = kernelForProfile(kernels, profile);
    if (!k) return `no ${profile} kernel for QEMU (have ${kernels.map((x) => x.profile).join(', ')})`;
    const r = unsupportedReason(ctx.kernel ? { ...c, config: { ...c.config, machine: { ...c.config.machine, kernel: profile } } } : c, profile, memoryMb);
    if (r) return r;
    try {
      buildProgram(c, 'probe');
    } catch (e) {
      if (e instanceof Unsupported) return e.message;
      throw e;
    }
    return undefined;
  };

  async function runBoot(kernel: KernelInfo, jobs: Job[]): Promise<Map<string, CaseRun>> {
    const base = await buildInitramfs(cacheDir, kernel);
    const work = mkdtempSync(join(tmpdir(), 'hwpsim-boot-'));
    const results = new Map<string, CaseRun>();
    try {
      const initrd = await initramfsWithProgram(base, jobs.map((j) => j.program.text).join(''), work);
      const byId = new Map(jobs.map((j) => [j.id, j]));
      let current: string | undefined;
      const physOf = new Map<string, bigint>();
      const onEvent = async (ev: AgentEvent, vm: { monitor(): Promise<import('./vm.js').Monitor>; send(l: string): void }): Promise<void> => {
        if (ev.ev === 'case' && typeof ev['id'] === 'string') {
          current = ev['id'];
          physOf.clear();
        }
        if (ev.ev === 'step' || ev.ev === 'setup') {
          for (const [name, r] of Object.entries((ev['refs'] ?? {}) as Record<string, { pfn?: string }>)) if (r.pfn) physOf.set(name, BigInt(r.pfn) * 4096n);
        }
        if (ev.ev === 'mce') {
          const job = current ? byId.get(current) : undefined;
          const plan = job?.program.mce.find((p) => p.step === ev['i']);
          const phys = BigInt(typeof ev['phys'] === 'string' ? ev['phys'] : '0');
          const spin = typeof ev['spin'] === 'string' && ev['spin'] !== '0x0' ? BigInt(ev['spin']) : undefined;
          // "mce-done N": N machine check exceptions raised (the agent waits until the guest has
          // taken them); "mce-done missed": nothing injected, the agent asks again.
          let answer = 'mce-done 0';
          try {
            if (plan) {
              const recs = planRecords(plan, phys, (r) => physOf.get(r));
              if (recs.length > 0) {
                const mon = await vm.monitor();
                const res = await injectInUserMode(mon, recs, spin);
                if (res === 'missed') say(`qemu: could not catch the vCPU in user mode for step ${String(ev['i'])} (try ${String(ev['try'] ?? 0)})`);
                answer = res === 'missed' ? 'mce-done missed' : `mce-done ${recs.some(raisesMc) ? 1 : 0}`;
              }
            }
          } catch (e) {
            say(`qemu: mce injection failed: ${e instanceof Error ? e.message : String(e)}`);
            answer = 'mce-done missed';
          }
          await new Promise((r) => setTimeout(r, 300));
          vm.send(answer);
        }
      };
      const timeoutMs = (opts.bootTimeoutMs ?? 60_000) + jobs.reduce((n, j) => n + j.timeoutMs, 0);
      const t0 = Date.now();
      // A case that hangs (the agent silent past the case timeout) stops the boot; the cases after
      // it get a fresh one.
      const idleTimeoutMs = Math.max(...jobs.map((j) => j.timeoutMs)) + 15_000;
      // A boot that may panic (recovery off, machine checks) prints every kernel message on the
      // console, so the panicking step's log can be read there.
      const append = jobs.some((j) => j.ownBoot) ? ['loglevel=8'] : [];
      const res = await boot({ kernel: kernel.vmlinuz, initrd, memoryMb, timeoutMs, idleTimeoutMs, onEvent, append, ...(opts.qemu ? { qemu: opts.qemu } : {}) });
      say(`qemu: ${kernel.release}: ${jobs.length} case(s) in ${Date.now() - t0} ms`);
      let cur: { id: string; events: AgentEvent[] } | undefined;
      for (const ev of res.events) {
        if (ev.ev === 'case' && typeof ev['id'] === 'string') {
          cur = { id: ev['id'], events: [] };
          continue;
        }
        if (!cur) continue;
        cur.events.push(ev);
        if (ev.ev === 'end') {
          results.set(cur.id, { events: cur.events });
          cur = undefined;
        }
      }
      if (cur) {
        // The boot ended inside this case.
        const why = res.panic !== undefined ? undefined : res.idle ? `timeout: the case made no progress for ${Math.round(idleTimeoutMs / 1000)} s (the VM was stopped)` : res.timedOut ? 'timeout: the VM did not finish the case' : `the VM stopped (${res.console.slice(-3).join(' | ')})`;
        const panicLog = res.panic !== undefined ? (res.tail ?? []).map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, '')).filter((l) => l.trim() && !l.startsWith('@@HWP')) : undefined;
        results.set(cur.id, { events: cur.events, ...(res.panic !== undefined ? { panic: res.panic, panicLog } : {}), ...(why ? { error: why } : {}) });
      } else if (results.size === 0) {
        const why = res.timedOut ? 'timeout before the agent started' : `the VM did not start the agent: ${res.console.slice(-5).join(' | ')}`;
        const first = jobs[0];
        if (first) results.set(first.id, { events: [], error: why, ...(res.panic !== undefined ? { panic: res.panic } : {}) });
      }
      return results;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  async function runBatch(cases: LoadedCase[], ctx: RunContext): Promise<CaseObservation[]> {
    const jobs: Job[] = cases.map((c, i) => ({
      c,
      id: `c${i}`,
      program: buildProgram(c, `c${i}`),
      profile: profileFor(c, ctx),
      ownBoot: needsOwnBoot(c),
      timeoutMs: ctx.timeoutMs,
    }));
    const out = new Map<string, CaseObservation>();
    const per = opts.casesPerBoot ?? 30;
    for (const profile of [...new Set(jobs.map((j) => j.profile))]) {
      const kernel = kernelForProfile(kernels, profile);
      if (!kernel) throw new Error(`no ${profile} kernel`);
      const mine = jobs.filter((j) => j.profile === profile);
      const groups: Job[][] = [];
      const shared = mine.filter((j) => !j.ownBoot);
      for (let i = 0; i < shared.length; i += per) groups.push(shared.slice(i, i + per));
      for (const j of mine.filter((x) => x.ownBoot)) groups.push([j]);
      for (let g of groups) {
        while (g.length > 0) {
          const res = await runBoot(kernel, g);
          const rest: Job[] = [];
          let broke = false;
          for (const j of g) {
            const r = res.get(j.id);
            if (r && !broke) out.set(j.id, toObservation(j.c, r, kernel.release, profile));
            else if (broke || !r) rest.push(j);
            if (r && (r.panic !== undefined || r.error)) broke = true;
          }
          // Cases the boot did not reach go into a fresh boot (at most once past the first failure).
          if (rest.length === g.length) {
            for (const j of rest) out.set(j.id, toObservation(j.c, { events: [], error: 'the VM did not run the case' }, kernel.release, profile));
            break;
          }
          g = rest;
        }
      }
    }
    return jobs.map((j) => out.get(j.id)!);
  }

  return {
    name: 'qemu',
    kernels,
    cannotRun,
    async run(c: LoadedCase, ctx: RunContext): Promise<CaseObservation> {
      const [o] = await runBatch([c], ctx);
      return o!;
    },
    runBatch,
    async close(): Promise<void> {
      // Every QEMU process is awaited by runBoot (and killed on timeout/SIGINT by vm.ts).
    },
  };
}
