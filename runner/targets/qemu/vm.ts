// One boot of qemu-system-x86_64 (TCG unless /dev/kvm is usable) with the hwpsim initramfs: streams
// the agent's "@@HWP {json}" lines from the serial console, answers mce requests through the
// QEMU monitor (a unix socket), notices kernel panics, and kills QEMU on timeout or SIGINT.
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export interface AgentEvent {
  ev: string;
  [k: string]: unknown;
}

export interface BootOptions {
  kernel: string;
  initrd: string;
  memoryMb?: number;
  /** Extra kernel command-line words. */
  append?: string[];
  /** Whole-boot timeout in ms. */
  timeoutMs: number;
  /** Called for each agent event; may return a promise (e.g. to inject an MCE before the guest goes on). */
  onEvent?: (ev: AgentEvent, vm: RunningVm) => void | Promise<void>;
  qemu?: string;
  kvm?: boolean;
  /** Stop the VM when the agent has said nothing for this long after its first event (a hung case). */
  idleTimeoutMs?: number;
}

export interface BootResult {
  events: AgentEvent[];
  /** Console lines that were not agent events (kernel messages printed at console loglevel). */
  console: string[];
  panic?: string;
  timedOut: boolean;
  /** Console lines after the last agent event (a panic's messages). */
  tail?: string[];
  /** The agent went silent for idleTimeoutMs and the VM was stopped. */
  idle?: boolean;
  exitCode: number | undefined;
  ms: number;
}

const live = new Set<ResultPromise>();
let sigintHooked = false;
function hookSigint(): void {
  if (sigintHooked) return;
  sigintHooked = true;
  const killAll = (): void => {
    for (const p of live) p.kill('SIGKILL');
  };
  process.once('SIGINT', () => {
    killAll();
    process.kill(process.pid, 'SIGINT');
  });
  process.once('exit', killAll);
}

export function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return process.env['HWPSIM_QEMU_KVM'] === '1';
  } catch {
    return false;
  }
}

/** A text-protocol client of the human monitor. */
export class Monitor {
  private buf = '';
  private waiters: (() => void)[] = [];
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      const w = this.waiters.splice(0);
      for (const f of w) f();
    });
    sock.on('error', () => undefined);
  }
  static async open(path: string, timeoutMs = 5000): Promise<Monitor> {
    const t0 = Date.now();
    for (;;) {
      try {
        const s = await new Promise<Socket>((res, rej) => {
          const c = connect(path);
          c.once('connect', () => res(c));
          c.once('error', rej);
        });
        const m = new Monitor(s);
        await m.until('(qemu)');
        return m;
      } catch (e) {
        if (Date.now() - t0 > timeoutMs) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  private async until(marker: string, timeoutMs = 30_000): Promise<string> {
    const t0 = Date.now();
    for (;;) {
      const i = this.buf.indexOf(marker);
      if (i >= 0) {
        const out = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + marker.length);
        return out;
      }
      if (Date.now() - t0 > timeoutMs) throw new Error(`monitor: no "${marker}"`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
  /** Runs a command and returns its output (without the echo and the prompt). */
  async cmd(line: string): Promise<string> {
    this.sock.write(`${line}\n`);
    const out = await this.until('(qemu)');
    // eslint-disable-next-line no-control-regex
    return out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').replace(/\r/g, '');
  }
  close(): void {
    this.sock.destroy();
  }
}

export interface RunningVm {
  monitor(): Promise<Monitor>;
  /** Writes a line to the guest's console input. */
  send(line: string): void;
}

export async function boot(o: BootOptions): Promise<BootResult> {
  hookSigint();
  const dir = mkdtempSync(join(tmpdir(), 'hwpsim-qemu-'));
  const monPath = join(dir, 'mon.sock');
  const kvm = o.kvm ?? kvmUsable();
  const append = ['console=ttyS0', 'loglevel=1', 'panic=-1', 'oops=panic', 'nokaslr', 'mitigations=off', 'tsc=reliable', 'no_timer_check', 'rdinit=/init', ...(o.append ?? [])];
  const args = [
    '-machine', kvm ? 'q35,accel=kvm' : 'q35,accel=tcg',
    '-cpu', kvm ? 'host' : 'qemu64,vendor=GenuineIntel',
    '-smp', '1',
    '-m', `${o.memoryMb ?? 512}M`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con',
    '-monitor', `unix:${monPath},server=on,wait=off`,
    '-kernel', o.kernel, '-initrd', o.initrd,
    '-append', append.join(' '),
  ];
  const t0 = Date.now();
  const child = execa(o.qemu ?? 'qemu-system-x86_64', args, { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false, buffer: false, forceKillAfterDelay: 1000 });
  live.add(child);
  const events: AgentEvent[] = [];
  const consoleLines: string[] = [];
  let panic: string | undefined;
  let timedOut = false;
  let mon: Monitor | undefined;
  const vm: RunningVm = {
    monitor: async () => (mon ??= await Monitor.open(monPath)),
    send: (line: string) => {
      child.stdin?.write(`${line}\n`);
    },
  };
  let chain: Promise<void> = Promise.resolve();
  let rest = '';
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs);
  let lastEvent = 0;
  let partial: string | undefined;
  let joins = 0;
  const tail: string[] = [];
  let idle = false;
  const watchdog = o.idleTimeoutMs
    ? setInterval(() => {
        if (lastEvent && Date.now() - lastEvent > o.idleTimeoutMs!) {
          idle = true;
          child.kill('SIGKILL');
        }
      }, 500)
    : undefined;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => {
    rest += d;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      let line = rest.slice(0, nl).replace(/\r$/, '');
      rest = rest.slice(nl + 1);
      // With every kernel message on the console (loglevel=8 boots), a message can land in the
      // middle of an agent line: "@@HWP {...[   12.3] msg" then "...}". Take the message out and
      // join the halves.
      if (partial !== undefined) {
        line = partial + line;
        partial = undefined;
      }
      const at = line.indexOf('@@HWP ');
      if (at >= 0) {
        const cut = /\[\s*\d+\.\d+\] .*$/.exec(line.slice(at));
        if (cut && !line.trimEnd().endsWith('}')) {
          const msg = cut[0];
          line = line.slice(0, at + cut.index);
          consoleLines.push(msg);
          tail.push(msg);
          const pmsg = /Kernel panic - not syncing: (.*)$/.exec(msg);
          if (pmsg && panic === undefined) {
            panic = pmsg[1]!.trim();
            setTimeout(() => child.kill('SIGKILL'), 300);
          }
          if (joins++ < 50) {
            partial = line;
            continue;
          }
        }
        try {
          const ev = JSON.parse(line.slice(at + 6)) as AgentEvent;
          events.push(ev);
          lastEvent = Date.now();
          tail.length = 0;
          if (o.onEvent) {
            const cb = o.onEvent;
            chain = chain.then(() => cb(ev, vm)).catch(() => undefined);
          }
        } catch {
          consoleLines.push(line);
        }
        continue;
      }
      consoleLines.push(line);
      tail.push(line);
      const pm = /Kernel panic - not syncing: (.*)$/.exec(line);
      if (pm && panic === undefined) {
        panic = pm[1]!.trim();
        // Let the panic's last lines arrive, then stop the machine.
        setTimeout(() => child.kill('SIGKILL'), 300);
      }
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr += d;
  });
  const res = await child;
  clearTimeout(timer);
  if (watchdog) clearInterval(watchdog);
  live.delete(child);
  await chain;
  mon?.close();
  rmSync(dir, { recursive: true, force: true });
  if (stderr.trim() && events.length === 0) consoleLines.push(...stderr.trim().split('\n').map((l) => `qemu: ${l}`));
  return { events, console: consoleLines, ...(panic !== undefined ? { panic } : {}), timedOut, ...(idle ? { idle } : {}), tail, exitCode: res.exitCode, ms: Date.now() - t0 };
}
