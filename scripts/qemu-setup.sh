#!/usr/bin/env bash
# Sets up what the QEMU/real-kernel target needs (Debian 12 host, run as root):
#   - qemu-system-x86, busybox-static, gcc (apt-get install)
#   - the current Debian 6.1 and 6.12 kernels, downloaded with `apt-get download` and unpacked
#     with `dpkg -x` into .qemu-cache/kernels/<uname -r>/ (never installed over the host's /boot).
# Idempotent: when everything is present it does no network access and takes well under a second.
# Environment: HWPSIM_QEMU_CACHE (default <repo>/.qemu-cache), HWPSIM_KERNEL_PACKAGES (space-separated
# package names, overriding the discovery through the linux-image-amd64 / linux-image-6.12-amd64
# meta packages).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${HWPSIM_QEMU_CACHE:-$here/.qemu-cache}"
kdir="$cache/kernels"
mkdir -p "$kdir" "$cache/debs"

say() { printf 'qemu-setup: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else say "need root for: $*"; return 1; fi; }

updated=0
apt_update_once() { if [ "$updated" = 0 ]; then say "apt-get update"; as_root apt-get update -qq; updated=1; fi; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v cpio >/dev/null || need+=(cpio)
if [ "${#need[@]}" -gt 0 ]; then
  apt_update_once
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Which kernel packages: the newest 6.1 (through linux-image-amd64) and 6.12 (linux-image-6.12-amd64).
have_kernel() { # $1 = series prefix ("6.1." or "6.12.")
  local d
  for d in "$kdir"/"$1"*; do [ -f "$d/boot/vmlinuz-$(basename "$d")" ] && return 0; done
  return 1
}
pkgs=()
if [ -n "${HWPSIM_KERNEL_PACKAGES:-}" ]; then
  read -r -a pkgs <<<"$HWPSIM_KERNEL_PACKAGES"
else
  for pair in "6.1.:linux-image-amd64" "6.12.:linux-image-6.12-amd64"; do
    series="${pair%%:*}"; meta="${pair#*:}"
    have_kernel "$series" && continue
    apt_update_once
    p="$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1)"
    if [ -z "$p" ]; then
      # The 6.12 series lives in bookworm-security / bookworm-backports: the newest one by name.
      p="$(apt-cache search --names-only "^linux-image-${series//./\\.}[0-9.]*\\+deb12-amd64\$" | awk '{print $1}' | sort -V | tail -1)"
    fi
    [ -n "$p" ] || { say "no package found for kernel series $series (is bookworm-security in the apt sources?)"; exit 1; }
    pkgs+=("$p")
  done
fi

for p in "${pkgs[@]}"; do
  ver="${p#linux-image-}"; ver="${ver%-unsigned}"
  if [ -f "$kdir/$ver/boot/vmlinuz-$ver" ]; then continue; fi
  deb="$(ls "$cache"/debs/"${p}"_*.deb 2>/dev/null | head -1 || true)"
  if [ -z "$deb" ]; then
    apt_update_once
    say "downloading $p"
    (cd "$cache/debs" && apt-get download -qq -o APT::Sandbox::User=root "$p")
    deb="$(ls "$cache"/debs/"${p}"_*.deb | head -1)"
  fi
  say "unpacking $(basename "$deb") into $kdir/$ver"
  tmp="$kdir/.$ver.tmp"; rm -rf "$tmp"; mkdir -p "$tmp"
  dpkg -x "$deb" "$tmp"
  # Keep only what the target uses: the kernel image, its config, and the modules (a few MB).
  mkdir -p "$tmp/keep/boot"
  cp "$tmp/boot/vmlinuz-$ver" "$tmp/boot/config-$ver" "$tmp/keep/boot/"
  [ -d "$tmp/lib/modules" ] && mv "$tmp/lib" "$tmp/keep/lib"
  rm -rf "$kdir/$ver"; mv "$tmp/keep" "$kdir/$ver"; rm -rf "$tmp"
  rm -f "$deb"
done

for d in "$kdir"/*/; do
  v="$(basename "$d")"
  grep -q '^CONFIG_MEMORY_FAILURE=y' "$d/boot/config-$v" || say "warning: $v lacks CONFIG_MEMORY_FAILURE"
  printf '%s\n' "$v"
done
say "ready: $(command -v qemu-system-x86_64) ; kernels in $kdir"
