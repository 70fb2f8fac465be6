// Builds (and caches under .qemu-cache/) the static agent and the base initramfs of a kernel:
// busybox + init + agent + hwpoison_inject, brd and ext4 with their dependencies (decompressed).
// A case program is appended per boot as a second, tiny cpio archive (the kernel unpacks both).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { KernelInfo } from './kernels.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root (works from runner/targets/qemu and from dist/runner/targets/qemu). */
export function repoRoot(): string {
  let d = here;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(d, 'qemu', 'agent', 'agent.c'))) return d;
    d = dirname(d);
  }
  return resolve(here, '..', '..', '..');
}

function sha(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

export const BUSYBOX = '/bin/busybox';

const building = new Map<string, Promise<string>>();
/** One build per output at a time in this process (boots of several kernels may start together). */
function once(key: string, f: () => Promise<string>): Promise<string> {
  let p = building.get(key);
  if (!p) {
    p = f().finally(() => building.delete(key));
    building.set(key, p);
  }
  return p;
}

/** Builds qemu/agent/agent.c with gcc -static; cached by the source's hash. */
export function buildAgent(cacheDir: string): Promise<string> {
  return once(`agent:${cacheDir}`, () => buildAgentNow(cacheDir));
}

async function buildAgentNow(cacheDir: string): Promise<string> {
  const src = join(repoRoot(), 'qemu', 'agent', 'agent.c');
  const key = sha(readFileSync(src));
  const out = join(cacheDir, 'agent', `agent-${key}`);
  if (existsSync(out)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await execa('gcc', ['-static', '-O2', '-Wall', '-pthread', '-o', tmp, src]);
  renameSync(tmp, out);
  return out;
}

/** Modules the guest loads (dependencies first), with parameters. */
export const GUEST_MODULES: { name: string; params?: string }[] = [
  { name: 'hwpoison-inject' },
  { name: 'brd', params: 'rd_nr=4 rd_size=32768' },
  { name: 'crc32c_generic' },
  { name: 'ext4' },
];

function findModule(modulesDir: string, name: string): string | undefined {
  const want = new Set([`${name}.ko`, `${name}.ko.xz`, `${name}.ko.zst`, `${name.replace(/-/g, '_')}.ko`, `${name.replace(/-/g, '_')}.ko.xz`, `${name.replace(/_/g, '-')}.ko`, `${name.replace(/_/g, '-')}.ko.xz`]);
  const stack = [join(modulesDir, 'kernel')];
  while (stack.length) {
    const d = stack.pop()!;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) stack.push(join(d, e.name));
      else if (want.has(e.name) && !d.includes("/arch/")) return join(d, e.name);
    }
  }
  return undefined;
}

async function moduleBytes(file: string): Promise<Buffer> {
  if (file.endsWith('.xz')) return Buffer.from((await execa('xz', ['-dc', file], { encoding: 'buffer' })).stdout);
  if (file.endsWith('.zst')) return Buffer.from((await execa('zstd', ['-dc', file], { encoding: 'buffer' })).stdout);
  return readFileSync(file);
}

/** The `depends=` entry of a module's .modinfo section. */
export function modinfoDepends(ko: Buffer): string[] {
  const tag = Buffer.from('\0depends=');
  const i = ko.indexOf(tag);
  if (i < 0) return [];
  const start = i + tag.length;
  const end = ko.indexOf(0, start);
  const v = ko.subarray(start, end < 0 ? undefined : end).toString('latin1');
  return v ? v.split(',').filter(Boolean) : [];
}

/** Resolves modules and their dependencies, in load order. */
export async function resolveModules(modulesDir: string, wanted: { name: string; params?: string }[]): Promise<{ name: string; file: string; bytes: Buffer; params: string }[]> {
  const order: { name: string; file: string; bytes: Buffer; params: string }[] = [];
  const seen = new Set<string>();
  const visit = async (name: string, params: string): Promise<void> => {
    const norm = name.replace(/-/g, '_');
    if (seen.has(norm)) return;
    seen.add(norm);
    const file = findModule(modulesDir, name);
    if (!file) return; // built in
    const bytes = await moduleBytes(file);
    for (const dep of modinfoDepends(bytes)) await visit(dep, '');
    order.push({ name: norm, file, bytes, params });
  };
  for (const w of wanted) await visit(w.name, w.params ?? '');
  return order;
}

/** Writes a newc cpio archive of a staging folder. */
export async function cpio(stageDir: string, out: string): Promise<void> {
  const list = (await execa('find', ['.', '-mindepth', '1'], { cwd: stageDir })).stdout;
  await execa('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-O', out], { cwd: stageDir, input: list });
}

/** The base initramfs for a kernel; cached by kernel, agent, init script and busybox. */
export function buildInitramfs(cacheDir: string, kernel: KernelInfo): Promise<string> {
  return once(`initramfs:${cacheDir}:${kernel.release}`, () => buildInitramfsNow(cacheDir, kernel));
}

async function buildInitramfsNow(cacheDir: string, kernel: KernelInfo): Promise<string> {
  const agent = await buildAgent(cacheDir);
  const init = join(repoRoot(), 'qemu', 'initramfs', 'init');
  const bb = statSync(BUSYBOX);
  const key = sha(kernel.release, agent, readFileSync(init), `${bb.size}:${bb.mtimeMs}`, JSON.stringify(GUEST_MODULES));
  const out = join(cacheDir, 'initramfs', `${kernel.release}-${key}.cpio`);
  if (existsSync(out)) return out;
  const stage = join(cacheDir, 'initramfs', `.stage-${kernel.release}-${process.pid}`);
  rmSync(stage, { recursive: true, force: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'mnt', 'run', 'tmp', 'lib/modules']) mkdirSync(join(stage, d), { recursive: true });
  copyFileSync(BUSYBOX, join(stage, 'bin', 'busybox'));
  copyFileSync(init, join(stage, 'init'));
  chmodSync(join(stage, 'init'), 0o755);
  copyFileSync(agent, join(stage, 'agent'));
  chmodSync(join(stage, 'agent'), 0o755);
  const mods = await resolveModules(kernel.modulesDir, GUEST_MODULES);
  const lines: string[] = [];
  for (const m of mods) {
    writeFileSync(join(stage, 'lib', 'modules', `${m.name}.ko`), m.bytes);
    lines.push(`${m.name}.ko ${m.params}`.trim());
  }
  writeFileSync(join(stage, 'modules.list'), `${lines.join('\n')}\n`);
  const tmp = `${out}.${process.pid}.tmp`;
  await cpio(stage, tmp);
  renameSync(tmp, out);
  rmSync(stage, { recursive: true, force: true });
  return out;
}

/** Base initramfs + a cpio with /program.txt, concatenated into one file. */
export async function initramfsWithProgram(base: string, program: string, workDir: string): Promise<string> {
  const stage = join(workDir, 'prog');
  mkdirSync(stage, { recursive: true });
  writeFileSync(join(stage, 'program.txt'), program);
  const progCpio = join(workDir, 'program.cpio');
  await cpio(stage, progCpio);
  const out = join(workDir, 'initrd.cpio');
  writeFileSync(out, Buffer.concat([readFileSync(base), readFileSync(progCpio)]));
  return out;
}
