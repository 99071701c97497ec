# bash completion for vm-provisioner, generated from its command definitions by
# `vm-provisioner completion bash`; regenerate it after an upgrade.
# Load it with: source <(vm-provisioner completion bash)

_vm_provisioner_subcommands() {
  case "$1" in
    '') printf '%s\n' 'create' 'template' 'start' 'stop' 'pause' 'resume' 'run' 'open' 'copy-to-vm' 'snapshot' 'list' 'get' 'set' 'apply' 'destroy' 'gc' 'console' 'logs' 'passwords' 'proxy' 'service' 'windows' 'clipboard' 'launchers' 'completion' 'help' 'version' ;;
    'template') printf '%s\n' 'create' 'import' 'list' 'update' 'destroy' ;;
    'snapshot') printf '%s\n' 'create' 'list' 'revert' 'delete' ;;
    'service') printf '%s\n' 'install' ;;
  esac
}

_vm_provisioner_flags() {
  case "$1" in
    '') printf '%s\n' '--connect' '-c' '--help' '-h' '--version' ;;
    'create') printf '%s\n' '--name' '--system' '--flatpak' '--autostart-app' '--memory' '--vcpus' '--disk' '--fedora-release' '--arch' '--virt-type' '--network' '--on-stop' '--label' '--display' '--graphics' '--config' '--vm-dir' '--output' '--import' '--template' '--kernel' '--initrd' '--kernel-args' '--location' '--force' '--yes' '-y' '--dry-run' '--install-timeout' '--verbose' '--connect' '-c' '--help' '-h' ;;
    'template') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'template create') printf '%s\n' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--system' '--flatpak' '--fedora-release' '--arch' '--disk' '--location' '--install-timeout' '--yes' '-y' '--verbose' '--connect' '-c' '--help' '-h' ;;
    'template import') printf '%s\n' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--kernel' '--initrd' '--kernel-args' '--connect' '-c' '--help' '-h' ;;
    'template list') printf '%s\n' '--json' '--connect' '-c' '--help' '-h' ;;
    'template update') printf '%s\n' '--timeout' '--connect' '-c' '--help' '-h' ;;
    'template destroy') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'start') printf '%s\n' '--viewer' '--no-viewer' '--seamless' '--no-seamless' '--seamless-timeout' '--connect' '-c' '--help' '-h' ;;
    'stop') printf '%s\n' '--timeout' '--force' '--save' '--no-save' '--connect' '-c' '--help' '-h' ;;
    'pause') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'resume') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'run') printf '%s\n' '--timeout' '--viewer' '--no-viewer' '--disposable' '--template' '--flatpak' '--socket' '--connect' '-c' '--help' '-h' ;;
    'open') printf '%s\n' '--timeout' '--socket' '--writeback' '--disposable' '--template' '--viewer' '--no-viewer' '--connect' '-c' '--help' '-h' ;;
    'copy-to-vm') printf '%s\n' '--timeout' '--socket' '--connect' '-c' '--help' '-h' ;;
    'snapshot') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'snapshot create') printf '%s\n' '--memory' '--connect' '-c' '--help' '-h' ;;
    'snapshot list') printf '%s\n' '--json' '--connect' '-c' '--help' '-h' ;;
    'snapshot revert') printf '%s\n' '--force' '--connect' '-c' '--help' '-h' ;;
    'snapshot delete') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'list') printf '%s\n' '--json' '--disposables' '--connect' '-c' '--help' '-h' ;;
    'get') printf '%s\n' '--json' '--connect' '-c' '--help' '-h' ;;
    'set') printf '%s\n' '--force' '--connect' '-c' '--help' '-h' ;;
    'apply') printf '%s\n' '--dry-run' '--prune' '--yes' '-y' '--force' '--connect' '-c' '--help' '-h' ;;
    'destroy') printf '%s\n' '--yes' '-y' '--connect' '-c' '--help' '-h' ;;
    'gc') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'console') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'logs') printf '%s\n' '--install' '--console' '--follow' '-f' '--connect' '-c' '--help' '-h' ;;
    'passwords') printf '%s\n' '--json' '--connect' '-c' '--help' '-h' ;;
    'proxy') printf '%s\n' '--listen' '--port' '--network' '--socket' '--agent-socket' '--heartbeat-interval' '--connect' '-c' '--help' '-h' ;;
    'service') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'service install') printf '%s\n' '--dry-run' '--connect' '-c' '--help' '-h' ;;
    'windows') printf '%s\n' '--json' '--follow' '-f' '--socket' '--connect' '-c' '--help' '-h' ;;
    'clipboard') printf '%s\n' '--socket' '--connect' '-c' '--help' '-h' ;;
    'launchers') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'completion') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'help') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
    'version') printf '%s\n' '--connect' '-c' '--help' '-h' ;;
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

_vm_provisioner_contains() {
  local word=$1; shift
  local x
  for x in "$@"; do [[ $x == "$word" ]] && return 0; done
  return 1
}

_vm_provisioner() {
  # Words by whitespace, not COMP_WORDS: libvirt URIs hold ':' and '=', which bash splits on.
  local line=${COMP_LINE:0:COMP_POINT} cur='' cmd_path='' vm='' prev='' kind
  local -a words subs connect=()
  local i=1 npos=0
  read -ra words <<< "$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=${words[${#words[@]}-1]}
    unset 'words[${#words[@]}-1]'
  fi
  while (( i < ${#words[@]} )); do
    local word=${words[i]}
    case $word in
      --connect|-c) connect=(--connect "${words[i+1]}") ;;
      --connect=*) connect=(--connect "${word#--connect=}") ;;
    esac
    if [[ $word == -?* ]]; then
      mapfile -t subs < <(_vm_provisioner_value_flags "$cmd_path")
      if _vm_provisioner_contains "$word" "${subs[@]}"; then (( i++ )); fi
    else
      mapfile -t subs < <(_vm_provisioner_subcommands "$cmd_path")
      if (( ${#subs[@]} > 0 )); then
        cmd_path=${cmd_path:+$cmd_path }$word
      else
        (( npos == 0 )) && vm=$word
        (( npos++ ))
      fi
    fi
    (( i++ ))
  done
  (( ${#words[@]} > 1 )) && prev=${words[${#words[@]}-1]}
  mapfile -t subs < <(_vm_provisioner_value_flags "$cmd_path")
  if [[ -n $prev ]] && _vm_provisioner_contains "$prev" "${subs[@]}"; then
    kind=$(_vm_provisioner_option_values "$cmd_path" "$prev")
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_vm_provisioner_flags "$cmd_path")" -- "$cur")
    return
  else
    mapfile -t subs < <(_vm_provisioner_subcommands "$cmd_path")
    if (( ${#subs[@]} > 0 )); then
      mapfile -t COMPREPLY < <(compgen -W "${subs[*]}" -- "$cur")
      return
    fi
    kind=$(_vm_provisioner_positional "$cmd_path" "$npos")
  fi
  case $kind in
    vm) mapfile -t COMPREPLY < <(compgen -W "$(vm-provisioner __complete vms "${connect[@]}" 2>/dev/null)" -- "$cur") ;;
    template) mapfile -t COMPREPLY < <(compgen -W "$(vm-provisioner __complete templates "${connect[@]}" 2>/dev/null)" -- "$cur") ;;
    snapshot) mapfile -t COMPREPLY < <(compgen -W "$(vm-provisioner __complete snapshots "$vm" "${connect[@]}" 2>/dev/null)" -- "$cur") ;;
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    choices\ *) mapfile -t COMPREPLY < <(compgen -W "${kind#choices }" -- "$cur") ;;
    *) COMPREPLY=() ;;
  esac
}

complete -F _vm_provisioner vm-provisioner
