#!/bin/sh
# The fake installer: PID 1 of a tiny initrd (busybox-static). It plays the part
# of Anaconda for integration tests: it reads the kickstart named by inst.ks=
# from its own initrd, prints Anaconda-like progress lines to the serial
# console, echoes the success (or failure) marker found in the kickstart, and
# powers the machine off, as the real install does with `poweroff` in the ks.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec >/dev/console 2>&1

finish() {
  sync
  poweroff -f
  sleep 30
}

echo "Starting installer, one moment..."
echo "anaconda 41.0-vmp.fake for Fedora Linux (vm-provisioner fake installer) started."
echo " * installation log files are stored in /tmp during the installation"

ks=""
vm_name=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    inst.ks=file:*) ks="${arg#inst.ks=file:}" ;;
  esac
done
if [ -z "$ks" ] || [ ! -f "$ks" ]; then
  echo "fake installer: no kickstart (inst.ks=file:... missing or unreadable: '$ks')"
  finish
fi

# Our kickstart's scripts name the VM in a shell variable and print "... ${vm_name}";
# expand it as the real %post would.
vm_name=$(sed -n "s/^vm_name='\([A-Za-z0-9._-]*\)'\$/\1/p" "$ks" | head -n 1)
expand() { sed "s/\${vm_name}/$vm_name/g"; }

echo "Progress"
echo ""
echo "Setting up the installation environment"
echo "."
echo "Configuring storage"
echo "Creating disklabel on /dev/vda"
echo "Creating xfs on /dev/vda1"
echo "."
echo "Running pre-installation scripts"
echo "."
echo "Starting package installation process"
echo "Preparing transaction from installation source"

# %packages entries, one a line, up to %end; comments, groups and exclusions skipped.
pkgs=$(sed -n '/^%packages/,/^%end/p' "$ks" | sed '1d;$d' | grep -v -e '^#' -e '^-' -e '^@' -e '^[[:space:]]*$')
total=$(echo "$pkgs" | grep -c .)
i=0
failed=""
for p in $pkgs; do
  i=$((i + 1))
  if [ "$p" = "vmp-fake-missing-package" ]; then
    failed="$p"
    break
  fi
  echo "Installing $p.x86_64 ($i/$total)"
done

if [ -n "$failed" ]; then
  echo "Error: the following software marked for installation has errors: $failed"
  # What the kickstart's %onerror section would print.
  marker=$(grep -o 'VMP-INSTALL-FAILED[^"]*' "$ks" | head -n 1 | expand)
  [ -n "$marker" ] && echo "$marker"
  finish
fi

echo "Performing post-installation setup tasks"
echo "Configuring installed system"
echo "Writing network configuration"
echo "Creating users"
echo "Generating initramfs"
echo "Storing configuration files and kickstarts"
echo "Running post-installation scripts"
# What the kickstart's %post prints; the name is whatever the kickstart says.
marker=$(grep -o 'VMP-INSTALL-OK [A-Za-z0-9._${}-]*' "$ks" | head -n 1 | expand)
[ -n "$marker" ] && echo "$marker"
echo "."
echo "Installation complete"
finish
