#!/usr/bin/env bash
# Runs a kickstart %post body on this (Debian) machine without touching it:
# inside a private mount namespace, /etc and /usr/local are overlays whose
# writes land in $WORK/upper-*, /dev/ttyS0 is a plain file, and commands that
# would change the system or the network (flatpak, systemctl, usermod, ...) are
# stubs on PATH that log their arguments. Everything else (bash, base64,
# sha256sum, install, cat, chmod, ln) is real.
#
# usage: post-sandbox.sh WORK SCRIPT   (run as root; WORK is an empty directory)
# env:   VMP_STUB_FAIL_FLATPAK_APP=ID makes `flatpak install ... ID` fail.
set -euo pipefail
work=$1
script=$2

if [[ ${VMP_IN_SANDBOX:-} != 1 ]]; then
  mkdir -p "$work"/{stubs,upper-etc,work-etc,upper-local,work-local}
  : > "$work/ttyS0"
  : > "$work/calls.log"
  for cmd in flatpak systemctl usermod groupadd chown selinuxenabled restorecon firewall-offline-cmd sleep; do
    cat > "$work/stubs/$cmd" << 'STUB'
#!/bin/bash
name=$(basename "$0")
printf '%s %s\n' "$name" "$*" >> "$VMP_STUB_LOG"
if [[ $name == flatpak && $1 == install && -n ${VMP_STUB_FAIL_FLATPAK_APP:-} && " $* " == *" $VMP_STUB_FAIL_FLATPAK_APP "* ]]; then
  echo "error: stub refuses $VMP_STUB_FAIL_FLATPAK_APP" >&2
  exit 1
fi
exit 0
STUB
    chmod 0755 "$work/stubs/$cmd"
  done
  exec unshare --mount --propagation private env VMP_IN_SANDBOX=1 "$0" "$@"
fi

mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/upper-etc,workdir=$work/work-etc" /etc
mount -t overlay overlay -o "lowerdir=/usr/local,upperdir=$work/upper-local,workdir=$work/work-local" /usr/local
if [[ -e /dev/ttyS0 ]]; then
  mount --bind "$work/ttyS0" /dev/ttyS0
else
  # No serial port on this machine: a private /dev with just null and ttyS0,
  # so a marker never creates a file in the real /dev.
  mount -t tmpfs tmpfs /dev
  mknod -m 0666 /dev/null c 1 3
  : > /dev/ttyS0
  mount --bind "$work/ttyS0" /dev/ttyS0
fi
export VMP_STUB_LOG=$work/calls.log
export PATH=$work/stubs:$PATH
exec /bin/bash "$script"
