#!/usr/bin/env bash
# Runs inside dbus-run-session: starts an unlocked gnome-keyring Secret
# Service, waits until it owns its bus name, then runs the README's test command.
set -euo pipefail

keyring_pid=
cleanup() { [[ -n $keyring_pid ]] && kill "$keyring_pid" 2>/dev/null || true; }
trap cleanup EXIT

# --unlock reads the login keyring's password from stdin; a fresh HOME means
# the keyring is created with it and left unlocked.
eval "$(printf 'vmp-ci-keyring' | gnome-keyring-daemon --unlock --components=secrets)"
keyring_pid=${GNOME_KEYRING_PID:-}
[[ -n $keyring_pid ]] || keyring_pid=$(pgrep -n -u "$(id -u)" gnome-keyring-d || true)
export GNOME_KEYRING_CONTROL
# Tells tests this keyring is disposable: they may lock it (and unlock it with
# the password above) or freeze the daemon, which they must never do to a
# developer's real desktop keyring.
export VMP_TEST_KEYRING_DISPOSABLE=1
echo "gnome-keyring-daemon pid ${keyring_pid:-unknown}"

for _ in $(seq 1 100); do
  if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; then
    break
  fi
  sleep 0.1
done

if [[ $# -gt 0 ]]; then
  "$@"
else
  npm test
fi
