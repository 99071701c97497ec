import {
  allCommands,
  flagSpellings,
  takesValue,
  type CommandInfo,
  type OptionInfo,
  type ValueKind,
} from './model.js';

/**
 * bash, zsh and fish completion scripts from the command tree (model.ts).
 * Commands, subcommands and flags are written into the script; names of VMs,
 * templates and snapshots come from `vm-provisioner __complete`, which asks
 * libvirt (with the --connect/-c of the line) under a short deadline and
 * prints nothing on error. All three scripts walk the line the same way: the
 * command words, then options (skipping the values of those that take one)
 * and positionals, counted to know what the current word is.
 */

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** A value's completion as the scripts spell it: a kind, or `choices WORD...`. */
function valueSpec(kind: ValueKind, choices: string[]): string | undefined {
  if (choices.length > 0) return `choices ${choices.join(' ')}`;
  return kind === 'none' ? undefined : kind;
}

interface Table {
  key: string;
  subcommands: Array<[string, string]>;
  flags: Array<[string, string]>;
  valueFlags: string[];
  optionValues: Array<[string, string]>;
  positionals: Array<[string, string]>;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function tables(root: CommandInfo): Table[] {
  return allCommands(root)
    .filter((c) => !c.hidden)
    .map((command) => {
      const options = command.options.filter((o) => !o.hidden);
      const flags = options.flatMap((o: OptionInfo) =>
        flagSpellings(o).map((f): [string, string] => [f, oneLine(o.describe)]),
      );
      const optionValues: Array<[string, string]> = [];
      for (const o of options.filter(takesValue)) {
        const spec = valueSpec(o.completes, o.choices);
        if (spec) for (const f of flagSpellings(o)) optionValues.push([f, spec]);
      }
      const positionals: Array<[string, string]> = [];
      command.positionals.forEach((p, i) => {
        const spec = valueSpec(p.completes, p.choices);
        if (spec) positionals.push([p.variadic ? `${i}+` : String(i), spec]);
      });
      return {
        key: command.path.join(' '),
        subcommands: command.subcommands
          .filter((c) => !c.hidden)
          .map((c): [string, string] => [c.path[c.path.length - 1]!, oneLine(c.describe)]),
        flags,
        valueFlags: options.filter(takesValue).flatMap(flagSpellings),
        optionValues,
        positionals,
      };
    });
}

/** Single-quoted for bash and zsh. */
function sq(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Single-quoted for fish, where only \\ and \' are escapes. */
function fq(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

const HEADER = (shell: Shell): string =>
  `# ${shell} completion for vm-provisioner, generated from its command definitions by\n` +
  `# \`vm-provisioner completion ${shell}\`; regenerate it after an upgrade.\n`;

/** `case` arms shared by bash and zsh: `'key') printf '%s\n' 'a' 'b' ;;`. */
function caseArms(entries: Array<[string, string[]]>, indent = '    '): string {
  return entries
    .filter(([, values]) => values.length > 0)
    .map(([key, values]) => `${indent}${sq(key)}) printf '%s\\n' ${values.map(sq).join(' ')} ;;`)
    .join('\n');
}

function shFunctions(t: Table[], describe: boolean): string {
  const pair = ([w, d]: [string, string]): string => (describe ? `${w.replace(/:/g, '\\:')}:${d}` : w);
  return [
    `_vm_provisioner_subcommands() {\n  case "$1" in\n${caseArms(t.map((x) => [x.key, x.subcommands.map(pair)]))}\n  esac\n}`,
    `_vm_provisioner_flags() {\n  case "$1" in\n${caseArms(t.map((x) => [x.key, x.flags.map(pair)]))}\n  esac\n}`,
    `_vm_provisioner_value_flags() {\n  case "$1" in\n${caseArms(t.map((x) => [x.key, x.valueFlags]))}\n  esac\n}`,
    `_vm_provisioner_option_values() {\n  case "$1|$2" in\n${caseArms(
      t.flatMap((x) => x.optionValues.map(([f, spec]): [string, string[]] => [`${x.key}|${f}`, [spec]])),
    )}\n  esac\n}`,
    `_vm_provisioner_positional() {\n  case "$1|$2" in\n${caseArms(
      t.flatMap((x) =>
        x.positionals.map(([i, spec]): [string, string[]] => [
          i.endsWith('+') ? `${x.key}|${i.slice(0, -1)}` : `${x.key}|${i}`,
          [spec],
        ]),
      ),
    )}\n  esac\n}`,
  ].join('\n\n');
}

export function bashScript(root: CommandInfo): string {
  return `${HEADER('bash')}# Load it with: source <(vm-provisioner completion bash)

${shFunctions(tables(root), false)}

_vm_provisioner_contains() {
  local word=$1; shift
  local x
  for x in "$@"; do [[ $x == "$word" ]] && return 0; done
  return 1
}

_vm_provisioner() {
  # Words by whitespace, not COMP_WORDS: libvirt URIs hold ':' and '=', which bash splits on.
  local line=\${COMP_LINE:0:COMP_POINT} cur='' cmd_path='' vm='' prev='' kind
  local -a words subs connect=()
  local i=1 npos=0
  read -ra words <<< "$line"
  if [[ -n $line && $line != *[[:space:]] ]]; then
    cur=\${words[\${#words[@]}-1]}
    unset 'words[\${#words[@]}-1]'
  fi
  while (( i < \${#words[@]} )); do
    local word=\${words[i]}
    case $word in
      --connect|-c) connect=(--connect "\${words[i+1]}") ;;
      --connect=*) connect=(--connect "\${word#--connect=}") ;;
    esac
    if [[ $word == -?* ]]; then
      mapfile -t subs < <(_vm_provisioner_value_flags "$cmd_path")
      if _vm_provisioner_contains "$word" "\${subs[@]}"; then (( i++ )); fi
    else
      mapfile -t subs < <(_vm_provisioner_subcommands "$cmd_path")
      if (( \${#subs[@]} > 0 )); then
        cmd_path=\${cmd_path:+$cmd_path }$word
      else
        (( npos == 0 )) && vm=$word
        (( npos++ ))
      fi
    fi
    (( i++ ))
  done
  (( \${#words[@]} > 1 )) && prev=\${words[\${#words[@]}-1]}
  mapfile -t subs < <(_vm_provisioner_value_flags "$cmd_path")
  if [[ -n $prev ]] && _vm_provisioner_contains "$prev" "\${subs[@]}"; then
    kind=$(_vm_provisioner_option_values "$cmd_path" "$prev")
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_vm_provisioner_flags "$cmd_path")" -- "$cur")
    return
  else
    mapfile -t subs < <(_vm_provisioner_subcommands "$cmd_path")
    if (( \${#subs[@]} > 0 )); then
      mapfile -t COMPREPLY < <(compgen -W "\${subs[*]}" -- "$cur")
      return
    fi
    kind=$(_vm_provisioner_positional "$cmd_path" "$npos")
  fi
  case $kind in
    vm) mapfile -t COMPREPLY < <(compgen -W "$(vm-provisioner __complete vms "\${connect[@]}" 2>/dev/null)" -- "$cur") ;;
    template) mapfile -t COMPREPLY < <(compgen -W "$(vm-provisioner __complete templates "\${connect[@]}" 2>/dev/null)" -- "$cur") ;;
    snapshot) mapfile -t COMPREPLY < <(compgen -W "$(vm-provisioner __complete snapshots "$vm" "\${connect[@]}" 2>/dev/null)" -- "$cur") ;;
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    choices\\ *) mapfile -t COMPREPLY < <(compgen -W "\${kind#choices }" -- "$cur") ;;
    *) COMPREPLY=() ;;
  esac
}

complete -F _vm_provisioner vm-provisioner
`;
}

export function zshScript(root: CommandInfo): string {
  return `#compdef vm-provisioner
${HEADER('zsh')}# Load it with: source <(vm-provisioner completion zsh)   (after compinit), or save it as
# _vm-provisioner in a directory on $fpath.

${shFunctions(tables(root), true)}

_vm_provisioner() {
  local cur=\${words[CURRENT]} cmd_path='' vm='' prev='' kind word
  local -a subs connect values
  local i=2 npos=0
  while (( i < CURRENT )); do
    word=\${words[i]}
    case $word in
      --connect|-c) connect=(--connect "\${words[i+1]}") ;;
      --connect=*) connect=(--connect "\${word#--connect=}") ;;
    esac
    if [[ $word == -?* ]]; then
      subs=("\${(@f)$(_vm_provisioner_value_flags "$cmd_path")}")
      if (( \${subs[(Ie)$word]} )); then (( i++ )); fi
    else
      subs=("\${(@f)$(_vm_provisioner_subcommands "$cmd_path")}")
      if [[ -n \${subs[1]} ]]; then
        cmd_path=\${cmd_path:+$cmd_path }$word
      else
        (( npos == 0 )) && vm=$word
        (( npos++ ))
      fi
    fi
    (( i++ ))
  done
  (( CURRENT > 2 )) && prev=\${words[CURRENT-1]}
  subs=("\${(@f)$(_vm_provisioner_value_flags "$cmd_path")}")
  if [[ -n $prev ]] && (( \${subs[(Ie)$prev]} )); then
    kind=$(_vm_provisioner_option_values "$cmd_path" "$prev")
  elif [[ $cur == -* ]]; then
    values=("\${(@f)$(_vm_provisioner_flags "$cmd_path")}")
    _describe -t options option values
    return
  else
    values=("\${(@f)$(_vm_provisioner_subcommands "$cmd_path")}")
    if [[ -n \${values[1]} ]]; then
      _describe -t commands command values
      return
    fi
    kind=$(_vm_provisioner_positional "$cmd_path" "$npos")
  fi
  case $kind in
    vm) values=("\${(@f)$(vm-provisioner __complete vms "\${connect[@]}" 2>/dev/null)}") ;;
    template) values=("\${(@f)$(vm-provisioner __complete templates "\${connect[@]}" 2>/dev/null)}") ;;
    snapshot) values=("\${(@f)$(vm-provisioner __complete snapshots "$vm" "\${connect[@]}" 2>/dev/null)}") ;;
    file) _files; return ;;
    dir) _files -/; return ;;
    choices\\ *) values=(\${=kind#choices }) ;;
    *) return 1 ;;
  esac
  values=(\${values:#})
  (( \${#values} )) && compadd -- "\${values[@]}"
}

if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _vm_provisioner "$@"
else
  compdef _vm_provisioner vm-provisioner
fi
`;
}

function fishSwitch(name: string, variable: string, arms: Array<[string, string[]]>): string {
  const body = arms
    .filter(([, lines]) => lines.length > 0)
    .map(([key, lines]) => `        case ${fq(key)}\n            printf '%s\\n' ${lines.map(fq).join(' ')}`)
    .join('\n');
  return `function ${name}\n    switch ${variable}\n${body}\n    end\nend`;
}

export function fishScript(root: CommandInfo): string {
  const t = tables(root);
  const pair = ([w, d]: [string, string]): string => (d ? `${w}\t${d}` : w);
  return `${HEADER('fish')}# Load it with: vm-provisioner completion fish | source, or save it as
# ~/.config/fish/completions/vm-provisioner.fish.

${fishSwitch(
  '__vm_provisioner_subcommands',
  '$argv[1]',
  t.map((x) => [x.key, x.subcommands.map(pair)]),
)}

${fishSwitch(
  '__vm_provisioner_flags',
  '$argv[1]',
  t.map((x) => [x.key, x.flags.map(pair)]),
)}

${fishSwitch(
  '__vm_provisioner_value_flags',
  '$argv[1]',
  t.map((x) => [x.key, x.valueFlags]),
)}

${fishSwitch(
  '__vm_provisioner_option_values',
  '"$argv[1]|$argv[2]"',
  t.flatMap((x) => x.optionValues.map(([f, spec]): [string, string[]] => [`${x.key}|${f}`, [spec]])),
)}

${fishSwitch(
  '__vm_provisioner_positional',
  '"$argv[1]|$argv[2]"',
  t.flatMap((x) =>
    x.positionals.map(([i, spec]): [string, string[]] => [
      `${x.key}|${i.endsWith('+') ? i.slice(0, -1) : i}`,
      [spec],
    ]),
  ),
)}

function __vm_provisioner_complete
    set -l words (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd_path ''
    set -l vm ''
    set -l connect
    set -l npos 0
    set -l i 2
    while test $i -le (count $words)
        set -l word $words[$i]
        switch $word
            case --connect -c
                set -l next (math $i + 1)
                if test $next -le (count $words)
                    set connect --connect $words[$next]
                end
            case '--connect=*'
                set connect --connect (string replace -- --connect= '' $word)
        end
        if string match -qr -- '^-.' $word
            if contains -- $word (__vm_provisioner_value_flags $cmd_path)
                set i (math $i + 1)
            end
        else if test -n "$(__vm_provisioner_subcommands $cmd_path)"
            set cmd_path (string trim -- "$cmd_path $word")
        else
            test $npos -eq 0; and set vm $word
            set npos (math $npos + 1)
        end
        set i (math $i + 1)
    end
    set -l kind
    set -l prev ''
    test (count $words) -gt 1; and set prev $words[-1]
    if test -n "$prev"; and contains -- $prev (__vm_provisioner_value_flags $cmd_path)
        set kind (__vm_provisioner_option_values $cmd_path $prev)
    else if string match -q -- '-*' $cur
        __vm_provisioner_flags $cmd_path
        return
    else if test -n "$(__vm_provisioner_subcommands $cmd_path)"
        __vm_provisioner_subcommands $cmd_path
        return
    else
        set kind (__vm_provisioner_positional $cmd_path $npos)
    end
    switch "$kind"
        case vm
            vm-provisioner __complete vms $connect 2>/dev/null
        case template
            vm-provisioner __complete templates $connect 2>/dev/null
        case snapshot
            vm-provisioner __complete snapshots $vm $connect 2>/dev/null
        case file
            __fish_complete_path $cur
        case dir
            __fish_complete_directories $cur
        case 'choices *'
            string split ' ' -- (string replace 'choices ' '' -- $kind)
    end
end

complete -c vm-provisioner -f -a '(__vm_provisioner_complete)'
`;
}

export function completionScript(shell: Shell, root: CommandInfo): string {
  return shell === 'bash' ? bashScript(root) : shell === 'zsh' ? zshScript(root) : fishScript(root);
}
