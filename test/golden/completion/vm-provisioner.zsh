#compdef vm-provisioner
# zsh completion for vm-provisioner, generated from its command definitions by
# `vm-provisioner completion zsh`; regenerate it after an upgrade.
# Load it with: source <(vm-provisioner completion zsh)   (after compinit), or save it as
# _vm-provisioner in a directory on $fpath.

_vm_provisioner_subcommands() {
  case "$1" in
    '') printf '%s\n' 'create:Create an app VM: Fedora + i3, the given packages and Flatpaks, auto-launched' 'template:Templates: one installed base, app VMs on it in about a second (create, import, list, update, destroy)' 'start:Boot a VM (or resume its saved state) and show it: a SPICE viewer, or its app windows on the host' 'stop:Shut a VM down (ACPI; hard with --force or your consent), or with --save keep its memory so start resumes it' 'pause:Freeze a running VM in memory (its vCPUs stop; resume continues it)' 'resume:Continue a paused VM; its guest agent is told at once' 'run:Run a command (an argv, not a shell string) in a VM'\''s session, starting or resuming the VM if needed; --disposable: in a throwaway VM removed when it ends' 'open:Open one host file in a VM (or, with --disposable, a throwaway one) with the guest'\''s default handler (a read-only copy; --writeback sends saved edits back)' 'copy-to-vm:Copy host files into a VM'\''s ~/Incoming/host/ (never overwriting: a clash gets a numbered name)' 'snapshot:Snapshots of a VM'\''s disks (and memory): create, list, revert, delete' 'list:List the VMs vm-provisioner made (state, memory, vCPUs, apps)' 'get:Show a VM'\''s or template'\''s settings (memory_mb, vcpus, auto_launch_apps, label, network_mode, display, on_stop)' 'set:Change a VM'\''s or template'\''s setting: memory_mb, vcpus, auto_launch_apps, label, network_mode, display, on_stop' 'apply:Make the templates and app VMs a TOML file declares, and change those that differ (docs/apply.md)' 'destroy:Delete a VM: its domain, disks and other files, config file and keyring entries (stops it first); also an unfinished create' 'gc:Remove what unfinished (crashed or killed) creates left behind, disposables whose CLI is gone, and preloaded disposables; running ones are left alone' 'console:Attach this terminal to a VM'\''s serial console (leave with Ctrl+])' 'logs:Show a VM'\''s serial console log (by virtlogd) or its install log; --follow keeps reading' 'passwords:Show the login password of every VM, or of one VM, from the OS keyring' 'proxy:Run the window proxy: accept guest agents on TCP 9999, serve windows and clipboard locally' 'service:Install the window proxy as a systemd user service of this install' 'windows:List the app windows of every VM (or one) from the window proxy; --follow streams changes' 'clipboard:Copy a VM'\''s clipboard to the host (copy) or the host'\''s clipboard into a VM (paste)' 'launchers:Write a desktop launcher for each VM'\''s apps (and remove those of VMs that are gone)' 'completion:Print a shell completion script for bash, zsh or fish (commands, flags, VM/template/snapshot names)' 'help:Show the help of the tool or of a command (as COMMAND --help)' 'version:Print vm-provisioner'\''s version (as --version)' ;;
    'template') printf '%s\n' 'create:Install a template with the Fedora kickstart pipeline, then seal it' 'import:Make a template from an installed qcow2 image (with the config-disk loader in it)' 'list:List templates: state, disk size and the app VMs built on each' 'update:Boot the template, run dnf/flatpak updates (or -- CMD...), shut it down and seal it again' 'destroy:Delete a template that no app VM uses: its domain, disk, config and keyring entries' ;;
    'snapshot') printf '%s\n' 'create:Snapshot the disks of a stopped VM, or with --memory the disks and memory of a running one' 'list:List a VM'\''s snapshots' 'revert:Go back to a snapshot (a running, paused or saved VM needs --force: its state is lost)' 'delete:Delete a snapshot (the VM as it is now stays)' ;;
    'service') printf '%s\n' 'install:Write and enable the window proxy'\''s systemd user unit (vm-provisioner-proxy.service) for this install' ;;
  esac
}

_vm_provisioner_flags() {
  case "$1" in
    '') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' '--version:Show version number' ;;
    'create') printf '%s\n' '--name:VM name (default: from the first Flatpak or package)' '--system:dnf packages, @groups or @^environments' '--flatpak:Flatpak application IDs from Flathub' '--autostart-app:command to launch at login, repeatable (default: flatpak run ID for each --flatpak)' '--memory:RAM in MiB (2048 to the host'\''s RAM)' '--vcpus:virtual CPUs (1 to the host'\''s CPUs)' '--disk:disk size in GB (at least 10)' '--fedora-release:Fedora release: 41, 42, 43' '--arch:x86_64 or aarch64' '--virt-type:kvm or qemu (emulation)' '--network:default (libvirt NAT), user (QEMU user-mode) or none' '--on-stop:what stop does by default: save (keep the memory, start resumes) or shutdown' '--label:trust colour of its windows and launchers: red, orange, yellow, green, blue, purple, gray, black' '--display:how start shows it: spice (the whole desktop in a viewer) or seamless (each app window on the host)' '--graphics:virtio or qxl' '--config:TOML spec file; flags override its keys' '--vm-dir:directory for the VM'\''s disk image' '--output:with --dry-run: write the kickstart, domain XML and plan to this directory' '--import:boot this existing disk image instead of installing' '--template:make the VM on this template: an overlay of its disk, no install (see '\''template list'\''); --no-template: install, even if defaults.toml names a template' '--kernel:with --import: boot this kernel directly (copied into --vm-dir); needs --initrd' '--initrd:with --import and --kernel: the initrd to boot with' '--kernel-args:with --kernel: the kernel command line, e.g. '\''root=/dev/vda rw console=ttyS0'\''' '--location:install tree URL instead of the release mirror' '--force:allow more memory or vCPUs than the host'\''s' '--yes:do not ask for confirmation' '-y:do not ask for confirmation' '--dry-run:print the plan and exit; create and write nothing' '--install-timeout:give up on the unattended install after this many minutes' '--verbose:also show the installer'\''s console log' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'template') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'template create') printf '%s\n' '--memory:RAM in MiB while the template runs (updates)' '--vcpus:virtual CPUs' '--virt-type:kvm or qemu (emulation)' '--network:default (libvirt NAT), user (QEMU user-mode) or none; app VMs inherit it' '--vm-dir:directory for the template'\''s disk (and, by default, its app VMs'\'')' '--config:TOML spec file; flags override its keys' '--system:dnf packages, @groups or @^environments' '--flatpak:Flatpak application IDs from Flathub' '--fedora-release:Fedora release' '--arch:x86_64 or aarch64' '--disk:disk size in GB' '--location:install tree URL instead of the release mirror' '--install-timeout:give up on the install after this many minutes' '--yes:do not ask for confirmation' '-y:do not ask for confirmation' '--verbose:also show the installer'\''s console log' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'template import') printf '%s\n' '--memory:RAM in MiB while the template runs (updates)' '--vcpus:virtual CPUs' '--virt-type:kvm or qemu (emulation)' '--network:default (libvirt NAT), user (QEMU user-mode) or none; app VMs inherit it' '--vm-dir:directory for the template'\''s disk (and, by default, its app VMs'\'')' '--config:TOML spec file; flags override its keys' '--kernel:boot this kernel directly (copied); needs --initrd' '--initrd:with --kernel: the initrd' '--kernel-args:with --kernel: the kernel command line' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'template list') printf '%s\n' '--json:print a JSON array' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'template update') printf '%s\n' '--timeout:minutes the command may run (default 60)' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'template destroy') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'start') printf '%s\n' '--viewer:open remote-viewer (needs DISPLAY or WAYLAND_DISPLAY); --no-viewer to skip' '--no-viewer:open remote-viewer (needs DISPLAY or WAYLAND_DISPLAY); --no-viewer to skip' '--seamless:show each app window as a window of the host'\''s X display (xpra); default: the VM'\''s display setting; --no-seamless for SPICE' '--no-seamless:show each app window as a window of the host'\''s X display (xpra); default: the VM'\''s display setting; --no-seamless for SPICE' '--seamless-timeout:seconds to wait for the guest to serve its windows (a cold boot included)' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'stop') printf '%s\n' '--timeout:seconds to wait for the guest to power off' '--force:stop it hard, without asking, if it has not powered off by then' '--save:save its memory to disk (libvirt managed save) instead; --no-save shuts down. Default: the VM'\''s on_stop' '--no-save:save its memory to disk (libvirt managed save) instead; --no-save shuts down. Default: the VM'\''s on_stop' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'pause') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'resume') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'run') printf '%s\n' '--timeout:seconds to wait for the VM'\''s agent to connect' '--viewer:open the SPICE viewer when run starts or resumes the VM; --no-viewer to skip' '--no-viewer:open the SPICE viewer when run starts or resumes the VM; --no-viewer to skip' '--disposable:run it in a new throwaway VM on a template, removed with all its files when it ends' '--template:with --disposable: the template (default: default_template in defaults.toml, else the only one)' '--flatpak:with --disposable, instead of -- CMD: run this Flatpak the template has (flatpak run ID)' '--socket:the proxy'\''s control socket' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'open') printf '%s\n' '--timeout:seconds to wait for the VM'\''s agent to connect' '--socket:the proxy'\''s control socket' '--writeback:keep the guest copy writable and replace the host file with each version saved in the guest, until Ctrl+C (or, in a disposable, until it ends)' '--disposable:open it in a new disposable, removed with every file of it once its last window closes' '--template:with --disposable: the template (default: default_template, else the only one)' '--viewer:with --disposable: open the disposable'\''s viewer (--no-viewer: do not)' '--no-viewer:with --disposable: open the disposable'\''s viewer (--no-viewer: do not)' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'copy-to-vm') printf '%s\n' '--timeout:seconds to wait for the VM'\''s agent to connect' '--socket:the proxy'\''s control socket' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'snapshot') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'snapshot create') printf '%s\n' '--memory:running VM: keep its memory too, so revert resumes it as it ran' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'snapshot list') printf '%s\n' '--json:print a JSON array' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'snapshot revert') printf '%s\n' '--force:throw away the VM'\''s current running or saved state' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'snapshot delete') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'list') printf '%s\n' '--json:print a JSON array' '--disposables:also list running disposables, marked as such (hidden otherwise)' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'get') printf '%s\n' '--json:print JSON' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'set') printf '%s\n' '--force:allow more memory or vCPUs than this host has' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'apply') printf '%s\n' '--dry-run:print the plan and change nothing' '--prune:also remove app VMs vm-provisioner made that the file does not list' '--yes:do not ask for confirmation' '-y:do not ask for confirmation' '--force:allow more memory or vCPUs than this host has' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'destroy') printf '%s\n' '--yes:do not ask for confirmation' '-y:do not ask for confirmation' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'gc') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'console') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'logs') printf '%s\n' '--install:the install log (the installer'\''s console during create)' '--console:the serial console log, kept across boots (default, when it exists; else the install log)' '--follow:keep printing what is added until Ctrl+C' '-f:keep printing what is added until Ctrl+C' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'passwords') printf '%s\n' '--json:print JSON: [{"name","password"}], or one object with NAME' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'proxy') printf '%s\n' '--listen:address to listen on for agents, repeatable' '--port:port for addresses given without one' '--network:libvirt network whose bridge VMs use' '--socket:control socket path' '--agent-socket:Unix socket for the agents'\'' virtio-serial links ('\''none'\'': TCP only)' '--heartbeat-interval:ms between heartbeats; 3 silent intervals close a connection' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'service') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'service install') printf '%s\n' '--dry-run:print the unit and exit; write nothing' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'windows') printf '%s\n' '--json:print JSON (with --follow: one event per line)' '--follow:stream window events until interrupted' '-f:stream window events until interrupted' '--socket:the proxy'\''s control socket' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'clipboard') printf '%s\n' '--socket:the proxy'\''s control socket' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'launchers') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'completion') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'help') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
    'version') printf '%s\n' '--connect:libvirt URI, as virsh -c (every command accepts it)' '-c:libvirt URI, as virsh -c (every command accepts it)' '--help:Show help' '-h:Show help' ;;
  esac
}

_vm_provisioner_value_flags() {
  case "$1" in
    '') printf '%s\n' '--connect' '-c' ;;
    'create') printf '%s\n' '--name' '--system' '--flatpak' '--autostart-app' '--memory' '--vcpus' '--disk' '--fedora-release' '--arch' '--virt-type' '--network' '--on-stop' '--label' '--display' '--graphics' '--config' '--vm-dir' '--output' '--import' '--template' '--kernel' '--initrd' '--kernel-args' '--location' '--install-timeout' '--connect' '-c' ;;
    'template') printf '%s\n' '--connect' '-c' ;;
    'template create') printf '%s\n' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--system' '--flatpak' '--fedora-release' '--arch' '--disk' '--location' '--install-timeout' '--connect' '-c' ;;
    'template import') printf '%s\n' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--kernel' '--initrd' '--kernel-args' '--connect' '-c' ;;
    'template list') printf '%s\n' '--connect' '-c' ;;
    'template update') printf '%s\n' '--timeout' '--connect' '-c' ;;
    'template destroy') printf '%s\n' '--connect' '-c' ;;
    'start') printf '%s\n' '--seamless-timeout' '--connect' '-c' ;;
    'stop') printf '%s\n' '--timeout' '--connect' '-c' ;;
    'pause') printf '%s\n' '--connect' '-c' ;;
    'resume') printf '%s\n' '--connect' '-c' ;;
    'run') printf '%s\n' '--timeout' '--template' '--flatpak' '--socket' '--connect' '-c' ;;
    'open') printf '%s\n' '--timeout' '--socket' '--template' '--connect' '-c' ;;
    'copy-to-vm') printf '%s\n' '--timeout' '--socket' '--connect' '-c' ;;
    'snapshot') printf '%s\n' '--connect' '-c' ;;
    'snapshot create') printf '%s\n' '--connect' '-c' ;;
    'snapshot list') printf '%s\n' '--connect' '-c' ;;
    'snapshot revert') printf '%s\n' '--connect' '-c' ;;
    'snapshot delete') printf '%s\n' '--connect' '-c' ;;
    'list') printf '%s\n' '--connect' '-c' ;;
    'get') printf '%s\n' '--connect' '-c' ;;
    'set') printf '%s\n' '--connect' '-c' ;;
    'apply') printf '%s\n' '--connect' '-c' ;;
    'destroy') printf '%s\n' '--connect' '-c' ;;
    'gc') printf '%s\n' '--connect' '-c' ;;
    'console') printf '%s\n' '--connect' '-c' ;;
    'logs') printf '%s\n' '--connect' '-c' ;;
    'passwords') printf '%s\n' '--connect' '-c' ;;
    'proxy') printf '%s\n' '--listen' '--port' '--network' '--socket' '--agent-socket' '--heartbeat-interval' '--connect' '-c' ;;
    'service') printf '%s\n' '--connect' '-c' ;;
    'service install') printf '%s\n' '--connect' '-c' ;;
    'windows') printf '%s\n' '--socket' '--connect' '-c' ;;
    'clipboard') printf '%s\n' '--socket' '--connect' '-c' ;;
    'launchers') printf '%s\n' '--connect' '-c' ;;
    'completion') printf '%s\n' '--connect' '-c' ;;
    'help') printf '%s\n' '--connect' '-c' ;;
    'version') printf '%s\n' '--connect' '-c' ;;
  esac
}

_vm_provisioner_option_values() {
  case "$1|$2" in
    'create|--config') printf '%s\n' 'file' ;;
    'create|--vm-dir') printf '%s\n' 'dir' ;;
    'create|--output') printf '%s\n' 'dir' ;;
    'create|--import') printf '%s\n' 'file' ;;
    'create|--template') printf '%s\n' 'template' ;;
    'create|--kernel') printf '%s\n' 'file' ;;
    'create|--initrd') printf '%s\n' 'file' ;;
    'template create|--vm-dir') printf '%s\n' 'dir' ;;
    'template create|--config') printf '%s\n' 'file' ;;
    'template import|--vm-dir') printf '%s\n' 'dir' ;;
    'template import|--config') printf '%s\n' 'file' ;;
    'template import|--kernel') printf '%s\n' 'file' ;;
    'template import|--initrd') printf '%s\n' 'file' ;;
    'run|--template') printf '%s\n' 'template' ;;
    'run|--socket') printf '%s\n' 'file' ;;
    'open|--socket') printf '%s\n' 'file' ;;
    'open|--template') printf '%s\n' 'template' ;;
    'copy-to-vm|--socket') printf '%s\n' 'file' ;;
    'proxy|--socket') printf '%s\n' 'file' ;;
    'windows|--socket') printf '%s\n' 'file' ;;
    'clipboard|--socket') printf '%s\n' 'file' ;;
  esac
}

_vm_provisioner_positional() {
  case "$1|$2" in
    'template import|1') printf '%s\n' 'file' ;;
    'template update|0') printf '%s\n' 'template' ;;
    'template destroy|0') printf '%s\n' 'template' ;;
    'start|0') printf '%s\n' 'vm' ;;
    'stop|0') printf '%s\n' 'vm' ;;
    'pause|0') printf '%s\n' 'vm' ;;
    'resume|0') printf '%s\n' 'vm' ;;
    'run|0') printf '%s\n' 'vm' ;;
    'open|0') printf '%s\n' 'vm' ;;
    'open|1') printf '%s\n' 'file' ;;
    'copy-to-vm|0') printf '%s\n' 'vm' ;;
    'snapshot create|0') printf '%s\n' 'vm' ;;
    'snapshot list|0') printf '%s\n' 'vm' ;;
    'snapshot revert|0') printf '%s\n' 'vm' ;;
    'snapshot revert|1') printf '%s\n' 'snapshot' ;;
    'snapshot delete|0') printf '%s\n' 'vm' ;;
    'snapshot delete|1') printf '%s\n' 'snapshot' ;;
    'get|0') printf '%s\n' 'vm' ;;
    'set|0') printf '%s\n' 'vm' ;;
    'apply|0') printf '%s\n' 'file' ;;
    'destroy|0') printf '%s\n' 'vm' ;;
    'console|0') printf '%s\n' 'vm' ;;
    'logs|0') printf '%s\n' 'vm' ;;
    'passwords|0') printf '%s\n' 'vm' ;;
    'windows|0') printf '%s\n' 'vm' ;;
    'clipboard|0') printf '%s\n' 'choices copy paste' ;;
    'clipboard|1') printf '%s\n' 'vm' ;;
    'launchers|0') printf '%s\n' 'choices sync' ;;
    'completion|0') printf '%s\n' 'choices bash zsh fish' ;;
  esac
}

_vm_provisioner() {
  local cur=${words[CURRENT]} cmd_path='' vm='' prev='' kind word
  local -a subs connect values
  local i=2 npos=0
  while (( i < CURRENT )); do
    word=${words[i]}
    case $word in
      --connect|-c) connect=(--connect "${words[i+1]}") ;;
      --connect=*) connect=(--connect "${word#--connect=}") ;;
    esac
    if [[ $word == -?* ]]; then
      subs=("${(@f)$(_vm_provisioner_value_flags "$cmd_path")}")
      if (( ${subs[(Ie)$word]} )); then (( i++ )); fi
    else
      subs=("${(@f)$(_vm_provisioner_subcommands "$cmd_path")}")
      if [[ -n ${subs[1]} ]]; then
        cmd_path=${cmd_path:+$cmd_path }$word
      else
        (( npos == 0 )) && vm=$word
        (( npos++ ))
      fi
    fi
    (( i++ ))
  done
  (( CURRENT > 2 )) && prev=${words[CURRENT-1]}
  subs=("${(@f)$(_vm_provisioner_value_flags "$cmd_path")}")
  if [[ -n $prev ]] && (( ${subs[(Ie)$prev]} )); then
    kind=$(_vm_provisioner_option_values "$cmd_path" "$prev")
  elif [[ $cur == -* ]]; then
    values=("${(@f)$(_vm_provisioner_flags "$cmd_path")}")
    _describe -t options option values
    return
  else
    values=("${(@f)$(_vm_provisioner_subcommands "$cmd_path")}")
    if [[ -n ${values[1]} ]]; then
      _describe -t commands command values
      return
    fi
    kind=$(_vm_provisioner_positional "$cmd_path" "$npos")
  fi
  case $kind in
    vm) values=("${(@f)$(vm-provisioner __complete vms "${connect[@]}" 2>/dev/null)}") ;;
    template) values=("${(@f)$(vm-provisioner __complete templates "${connect[@]}" 2>/dev/null)}") ;;
    snapshot) values=("${(@f)$(vm-provisioner __complete snapshots "$vm" "${connect[@]}" 2>/dev/null)}") ;;
    file) _files; return ;;
    dir) _files -/; return ;;
    choices\ *) values=(${=kind#choices }) ;;
    *) return 1 ;;
  esac
  values=(${values:#})
  (( ${#values} )) && compadd -- "${values[@]}"
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _vm_provisioner "$@"
else
  compdef _vm_provisioner vm-provisioner
fi
