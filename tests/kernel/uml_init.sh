#!/bin/bash
# PID-1 init for the UML guest used by uml_run.py.
#
# Stage 1 runs on the host's "/" mounted read-only through hostfs.  It builds a
# throw-away writable root (overlayfs: lower = hostfs "/", upper = tmpfs),
# mounts everything listed in $uml_job/fstab (written by uml_run.py: proc,
# sys, devtmpfs, devpts, /dev/shm, /run, /run/netns, /tmp, /lib/modules,
# the rw hostfs workdir), pivot_roots into it and re-execs itself as stage 2,
# which runs the job and powers the guest off.
#
# Every fork/exec costs ~0.1 s inside UML, so this script deliberately uses
# as few external commands as possible (bash builtins, one `mount -a`).
#
# Parameters come from the kernel command line (unknown key=value params are
# handed to init as environment variables):
#   uml_job=<host dir>      job dir written by uml_run.py (argv, env, cwd, fstab)
#   uml_soft_timeout=<sec>  guest-side timeout for the command (0 = none)
#   uml_modules=a,b,c       modules to load before the command (default ipv6)
#   uml_ver=<release>       UML kernel release (avoids forking uname)
#   uml_moddir=<dir>        where the UML kernel's modules are (default /usr/lib/uml/modules)
#   uml_trace=1             set -x with timestamps on the console
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8
[ -n "${uml_trace:-}" ] && { PS4='+ $EPOCHREALTIME $LINENO '; set -x; }

poweroff_now() {
    [ -e /proc/sysrq-trigger ] || mount -t proc proc /proc
    sync
    echo o > /proc/sysrq-trigger
    # sysrq-o is asynchronous; PID 1 must never exit (kernel panic).
    while :; do sleep 60; done
}

die() {
    echo "uml_init: FATAL: $*" >&2
    { echo "uml_init: FATAL: $*" >> "$uml_job/init_error"; } 2>/dev/null
    poweroff_now
}

# ================================================================ stage 2
if [ "${1:-}" = stage2 ]; then
    umount -l /.uml_oldroot
    echo uml-guest > /proc/sys/kernel/hostname
    echo /sbin/modprobe > /proc/sys/kernel/modprobe   # module autoload
    ip link set lo up
    if [ -n "${uml_modules:-}" ]; then
        modprobe -a ${uml_modules//,/ } || die "modprobe -a ${uml_modules//,/ } failed"
    fi

    # argv / env are NUL-separated files written by uml_run.py
    mapfile -d '' -t ARGV < "$uml_job/argv" || die "cannot read argv"
    mapfile -d '' -t ENVV < "$uml_job/env"  || die "cannot read env"
    read -r CWD < "$uml_job/cwd"
    OUT="$uml_job/output"
    TO=()
    [ "${uml_soft_timeout:-0}" != 0 ] && TO=(timeout --kill-after=5 "$uml_soft_timeout")
    read -r up _ < /proc/uptime
    echo "cmd_start_uptime=$up cmd_start_epoch=$EPOCHREALTIME" > "$uml_job/timing"
    (
        cd "$CWD" || exit 126
        # clean environment: only what uml_run.py asked for.  No $(compgen -e):
        # command substitution forks, which is slow in UML.
        for p in {A..Z} {a..z} _; do
            eval "names=(\${!$p@})"
            for v in "${names[@]}"; do export -n "$v" 2>/dev/null; done
        done
        for kv in "${ENVV[@]}"; do export "$kv"; done
        exec "${TO[@]}" "${ARGV[@]}"
    ) < /dev/null > "$OUT" 2>&1
    rc=$?
    read -r up _ < /proc/uptime
    echo "cmd_end_uptime=$up cmd_end_epoch=$EPOCHREALTIME" >> "$uml_job/timing"
    echo "$rc" > "$uml_job/rc"
    poweroff_now
fi

# ================================================================ stage 1
[ -n "${uml_job:-}" ] || die "no uml_job= on kernel command line"
[ -r "$uml_job/fstab" ] || die "no $uml_job/fstab"
[ -n "${uml_ver:-}" ] || die "no uml_ver= on kernel command line"
VER=$uml_ver
NEW=/run/uml/root

mount -t tmpfs -o mode=0755 tmpfs /run || die "mount tmpfs on /run"
# upper/.uml_oldroot: pivot_root target, created before the overlay exists
mkdir -p $NEW /run/uml/ovl/work /run/uml/ovl/upper/.uml_oldroot
# the host has no /lib/modules, so load overlay by path (no deps)
insmod "${uml_moddir:-/usr/lib/uml/modules}/$VER/kernel/fs/overlayfs/overlay.ko" || die "insmod overlay"
# overlay root first, then everything below it (see fstab)
mount -a -T "$uml_job/fstab" || die "mount -a -T $uml_job/fstab failed"
# /dev/fd, /dev/std{in,out,err}: devtmpfs is one shared instance, so
# copying the prepared symlinks into the old /dev shows up in the new one
cp -a "${0%/*}/devlinks/." /dev/
cd $NEW || die "cd $NEW"
pivot_root . .uml_oldroot || die "pivot_root failed"
exec /bin/bash "$0" stage2
