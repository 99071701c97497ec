# bash completion for vm-provisioner, generated from its command definitions by
# `vm-provisioner completion bash`; regenerate it after an upgrade.
# Load it with: source <(vm-provisioner completion bash)

_vm_provisioner_subcommands() {
  case "$1" in
    '') printf '%s\n' 'create' 'template' 'start' 'stop' 'pause' 'resume' 'snapshot' 'list' 'get' 'set' 'apply' 'destroy' 'gc' 'console' 'passwords' 'proxy' 'windows' 'clipboard' 'completion' 'help' 'version' ;;
    'template') printf '%s\n' 'create' 'import' 'list' 'update' 'destroy' ;;
    'snapshot') printf '%s\n' 'create' 'list' 'revert' 'delete' ;;
  esac
}

_vm_provisioner_flags() {
  case "$1" in
    '') printf '%s\n' '--help' '-h' '--version' ;;
    'create') printf '%s\n' '--name' '--system' '--flatpak' '--autostart-app' '--memory' '--vcpus' '--disk' '--fedora-release' '--arch' '--virt-type' '--network' '--on-stop' '--label' '--display' '--graphics' '--config' '--vm-dir' '--output' '--connect' '--import' '--template' '--kernel' '--initrd' '--kernel-args' '--location' '--force' '--yes' '-y' '--dry-run' '--install-timeout' '--verbose' '--help' '-h' ;;
    'template') printf '%s\n' '--help' '-h' ;;
    'template create') printf '%s\n' '--connect' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--system' '--flatpak' '--fedora-release' '--arch' '--disk' '--location' '--install-timeout' '--yes' '-y' '--verbose' '--help' '-h' ;;
    'template import') printf '%s\n' '--connect' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--kernel' '--initrd' '--kernel-args' '--help' '-h' ;;
    'template list') printf '%s\n' '--connect' '--json' '--help' '-h' ;;
    'template update') printf '%s\n' '--connect' '--timeout' '--help' '-h' ;;
    'template destroy') printf '%s\n' '--connect' '--help' '-h' ;;
    'start') printf '%s\n' '--connect' '--viewer' '--no-viewer' '--seamless' '--no-seamless' '--seamless-timeout' '--help' '-h' ;;
    'stop') printf '%s\n' '--connect' '--timeout' '--force' '--save' '--no-save' '--help' '-h' ;;
    'pause') printf '%s\n' '--connect' '--help' '-h' ;;
    'resume') printf '%s\n' '--connect' '--help' '-h' ;;
    'snapshot') printf '%s\n' '--help' '-h' ;;
    'snapshot create') printf '%s\n' '--connect' '--memory' '--help' '-h' ;;
    'snapshot list') printf '%s\n' '--connect' '--json' '--help' '-h' ;;
    'snapshot revert') printf '%s\n' '--connect' '--force' '--help' '-h' ;;
    'snapshot delete') printf '%s\n' '--connect' '--help' '-h' ;;
    'list') printf '%s\n' '--connect' '--json' '--help' '-h' ;;
    'get') printf '%s\n' '--connect' '--json' '--help' '-h' ;;
    'set') printf '%s\n' '--connect' '--force' '--help' '-h' ;;
    'apply') printf '%s\n' '--connect' '--dry-run' '--prune' '--yes' '-y' '--force' '--help' '-h' ;;
    'destroy') printf '%s\n' '--connect' '--yes' '-y' '--help' '-h' ;;
    'gc') printf '%s\n' '--help' '-h' ;;
    'console') printf '%s\n' '--connect' '--help' '-h' ;;
    'passwords') printf '%s\n' '--json' '--help' '-h' ;;
    'proxy') printf '%s\n' '--listen' '--port' '--network' '--connect' '--socket' '--heartbeat-interval' '--help' '-h' ;;
    'windows') printf '%s\n' '--json' '--follow' '-f' '--socket' '--help' '-h' ;;
    'clipboard') printf '%s\n' '--socket' '--help' '-h' ;;
    'completion') printf '%s\n' '--help' '-h' ;;
    'help') printf '%s\n' '--help' '-h' ;;
    'version') printf '%s\n' '--help' '-h' ;;
  esac
}

_vm_provisioner_value_flags() {
  case "$1" in
    'create') printf '%s\n' '--name' '--system' '--flatpak' '--autostart-app' '--memory' '--vcpus' '--disk' '--fedora-release' '--arch' '--virt-type' '--network' '--on-stop' '--label' '--display' '--graphics' '--config' '--vm-dir' '--output' '--connect' '--import' '--template' '--kernel' '--initrd' '--kernel-args' '--location' '--install-timeout' ;;
    'template create') printf '%s\n' '--connect' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--system' '--flatpak' '--fedora-release' '--arch' '--disk' '--location' '--install-timeout' ;;
    'template import') printf '%s\n' '--connect' '--memory' '--vcpus' '--virt-type' '--network' '--vm-dir' '--config' '--kernel' '--initrd' '--kernel-args' ;;
    'template list') printf '%s\n' '--connect' ;;
    'template update') printf '%s\n' '--connect' '--timeout' ;;
    'template destroy') printf '%s\n' '--connect' ;;
    'start') printf '%s\n' '--connect' '--seamless-timeout' ;;
    'stop') printf '%s\n' '--connect' '--timeout' ;;
    'pause') printf '%s\n' '--connect' ;;
    'resume') printf '%s\n' '--connect' ;;
    'snapshot create') printf '%s\n' '--connect' ;;
    'snapshot list') printf '%s\n' '--connect' ;;
    'snapshot revert') printf '%s\n' '--connect' ;;
    'snapshot delete') printf '%s\n' '--connect' ;;
    'list') printf '%s\n' '--connect' ;;
    'get') printf '%s\n' '--connect' ;;
    'set') printf '%s\n' '--connect' ;;
    'apply') printf '%s\n' '--connect' ;;
    'destroy') printf '%s\n' '--connect' ;;
    'console') printf '%s\n' '--connect' ;;
    'proxy') printf '%s\n' '--listen' '--port' '--network' '--connect' '--socket' '--heartbeat-interval' ;;
    'windows') printf '%s\n' '--socket' ;;
    'clipboard') printf '%s\n' '--socket' ;;
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
    'passwords|0') printf '%s\n' 'vm' ;;
    'windows|0') printf '%s\n' 'vm' ;;
    'clipboard|0') printf '%s\n' 'choices copy paste' ;;
    'clipboard|1') printf '%s\n' 'vm' ;;
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
