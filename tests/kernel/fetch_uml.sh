#!/bin/bash
# Unpack a User-Mode Linux kernel for the kernel-feature test lane into $TOPO_UML_ROOT
# (default /opt/topo-uml), from Debian's archive, without installing it system-wide.
#
# Why not bookworm's own user-mode-linux (6.1, or trixie's 6.12): on hosts whose CPU has a
# large XSAVE area (AVX-512, AMX), those kernels die at boot with "userspace - ptrace set fp
# regs failed, errno = 14" (the host kernel wants the whole XSAVE buffer; they pass a
# fixed, smaller one). Debian unstable's user-mode-linux (7.x) sizes it from the host and
# boots. It needs glibc >= 2.38, so its libc6 is unpacked beside it and the binary's ELF
# interpreter and run path are pointed there with patchelf; nothing else on the host changes.
#
# Idempotent: does nothing when the root already holds a bootable linux.uml.
set -euo pipefail
ROOT=${TOPO_UML_ROOT:-/opt/topo-uml}
SUITE=${TOPO_UML_SUITE:-sid}
if [ -x "$ROOT/usr/bin/linux.uml" ] && "$ROOT/usr/bin/linux.uml" --version >/dev/null 2>&1; then
    echo "UML lane kernel: $("$ROOT/usr/bin/linux.uml" --version) in $ROOT (kept)"
    exit 0
fi
command -v patchelf >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q patchelf >/dev/null; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$WORK/archives/partial" "$WORK/debs"
echo "deb http://deb.debian.org/debian $SUITE main" > "$WORK/sources.list"
APT=(-o "Dir::Etc::sourcelist=$WORK/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$WORK/lists"
     -o "Dir::Cache::Archives=$WORK/archives" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
apt-get "${APT[@]}" update -q >/dev/null
(cd "$WORK/debs" && apt-get "${APT[@]}" download user-mode-linux libc6 >/dev/null)
rm -rf "$ROOT.new" && mkdir -p "$ROOT.new"
for deb in "$WORK"/debs/*.deb; do dpkg-deb -x "$deb" "$ROOT.new"; done
LIB=$ROOT/usr/lib/x86_64-linux-gnu
patchelf --set-interpreter "$LIB/ld-linux-x86-64.so.2" --set-rpath "$LIB" "$ROOT.new/usr/bin/linux.uml"
rm -rf "$ROOT" && mv "$ROOT.new" "$ROOT"
echo "UML lane kernel: $("$ROOT/usr/bin/linux.uml" --version) from Debian $SUITE in $ROOT"
