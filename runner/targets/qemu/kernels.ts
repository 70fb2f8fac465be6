// Kernel discovery: the kernels scripts/qemu-setup.sh unpacked under .qemu-cache/kernels/<uname -r>/.
// A kernel's version picks the model profile ("6.1", "6.12") the case must ask for.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface KernelInfo {
  /** uname -r, e.g. "6.1.0-56-amd64" or "6.12.117+deb12-amd64". */
  release: string;
  /** Model profile: "6.1", "6.12". */
  profile: string;
  dir: string;
  vmlinuz: string;
  modulesDir: string;
}

/** The cache folder: $HWPSIM_QEMU_CACHE or <repo>/.qemu-cache. */
export function defaultCacheDir(root: string = process.cwd()): string {
  return resolve(process.env['HWPSIM_QEMU_CACHE'] ?? join(root, '.qemu-cache'));
}

/** "6.1.0-56-amd64" -> "6.1"; "6.12.117+deb12-amd64" -> "6.12". */
export function profileOf(release: string): string | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? `${m[1]}.${m[2]}` : undefined;
}

export function findKernels(cacheDir: string): KernelInfo[] {
  const base = join(cacheDir, 'kernels');
  if (!existsSync(base)) return [];
  const out: KernelInfo[] = [];
  for (const release of readdirSync(base).sort()) {
    if (release.startsWith('.')) continue;
    const dir = join(base, release);
    const vmlinuz = join(dir, 'boot', `vmlinuz-${release}`);
    const modulesDir = join(dir, 'lib', 'modules', release);
    const profile = profileOf(release);
    if (profile && existsSync(vmlinuz) && existsSync(modulesDir)) out.push({ release, profile, dir, vmlinuz, modulesDir });
  }
  return out;
}

export function kernelForProfile(kernels: KernelInfo[], profile: string): KernelInfo | undefined {
  return kernels.filter((k) => k.profile === profile).at(-1);
}
