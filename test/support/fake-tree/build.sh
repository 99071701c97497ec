#!/usr/bin/env bash
# Builds the fake install tree's kernel and initrd for integration tests and
# prints the directory holding them (images/pxeboot/{vmlinuz,initrd.img}).
#
# Kernel: Debian's linux-image for amd64 (vmlinuz extracted from the .deb).
# Initrd: busybox-static + init.sh as /init, a gzip'd newc cpio made with
# Debian's cpio (deliberately not our own writer, so the two check each other).
# The result is cached under $VMP_TEST_CACHE_DIR (default
# /var/tmp/vm-provisioner-test-cache) keyed by the package versions and the
# hashes of this script and init.sh, so tests don't rebuild each time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${VMP_TEST_CACHE_DIR:-/var/tmp/vm-provisioner-test-cache}

kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
[[ -n $kernel_pkg ]] || { echo "build.sh: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
kernel_ver=$(apt-cache policy "$kernel_pkg" | sed -n 's/^ *Candidate: //p')
busybox_ver=$(apt-cache policy busybox-static | sed -n 's/^ *Candidate: //p')
[[ -n $kernel_ver && -n $busybox_ver ]] || { echo "build.sh: package versions unknown (run apt-get update)" >&2; exit 1; }

key=$( { echo "$kernel_pkg $kernel_ver busybox-static $busybox_ver"; cat "$here/build.sh" "$here/init.sh"; } | sha256sum | cut -c1-16)
out="$cache_root/fake-tree-$key"
if [[ -s $out/images/pxeboot/vmlinuz && -s $out/images/pxeboot/initrd.img ]]; then
  echo "$out"
  exit 0
fi

mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  # apt's _apt user must be able to write the download dir.
  chmod 0755 "$work"
  apt-get download -q "$kernel_pkg=$kernel_ver" "busybox-static=$busybox_ver" >/dev/null
  dpkg-deb --fsys-tarfile "$kernel_pkg"_*.deb | tar -x --wildcards './boot/vmlinuz-*'
  dpkg-deb --fsys-tarfile busybox-static_*.deb | tar -x ./bin/busybox
  mkdir -p root/bin root/proc root/sys root/dev root/tmp images/pxeboot
  cp bin/busybox root/bin/busybox
  ln -s busybox root/bin/sh
  install -m 0755 "$here/init.sh" root/init
  (cd root && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9n > images/pxeboot/initrd.img
  cp boot/vmlinuz-* images/pxeboot/vmlinuz
)
mkdir -p "$out.tmp"
mv "$work/images" "$out.tmp/images"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
