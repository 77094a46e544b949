"""Shell completion for the command line (`memcglang completion bash|zsh|fish`, docs/shell.md).

The scripts are made from the same argparse parsers the commands use (`cli.parser`), so a new
option completes without touching this file: subcommands, each command's options, the values
of options with choices (`--model v1|3.17|legacy`, `diff --models A,B`), file names for options
that take a file (`-o`, `--replay`) and `.mcg` files (and directories) for the arguments.
"""

from __future__ import annotations

from memcglang.cli import COMMANDS, MODELS, parser

FILE_METAVARS = frozenset(("OUT", "REPLAY", "FILE", "PATH", "DIR"))


def _numeric() -> list[str]:
    """The options that take a number: nothing to complete after them."""
    return sorted({o for command in COMMANDS for action in parser(command)._actions
                   if action.type in (int, float) for o in action.option_strings})


def _options(command: str) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(every option, {option: its values}, the options that take a file name)."""
    options: list[str] = []
    values: dict[str, list[str]] = {}
    files: list[str] = []
    for action in parser(command)._actions:
        if not action.option_strings:
            continue
        options.extend(action.option_strings)
        if action.choices:
            for o in action.option_strings:
                values[o] = [str(c) for c in action.choices]
        elif action.metavar in FILE_METAVARS:
            files.extend(action.option_strings)
    if command == "diff":
        pairs = [f"{a},{b}" for a in MODELS for b in MODELS if a != b]
        values["--models"] = pairs
    return options, values, files


def _positional_choices(command: str) -> list[str]:
    for action in parser(command)._actions:
        if not action.option_strings and action.choices:
            return [str(c) for c in action.choices]
    return []


def bash() -> str:
    cases_values, cases_files, cases_opts = [], [], []
    for command in COMMANDS:
        options, values, files = _options(command)
        for option, choices in values.items():
            cases_values.append(f'        {command}:{option}) COMPREPLY=($(compgen -W '
                                f'"{" ".join(choices)}" -- "$cur")); return;;')
        for option in files:
            cases_files.append(f'        {command}:{option}) COMPREPLY=($(compgen -f -- "$cur"));'
                               " return;;")
        cases_opts.append(f'        {command}) opts="{" ".join(options)}";;')
        positional = _positional_choices(command)
        if positional:
            cases_values.append(f'        {command}:{command}) COMPREPLY=($(compgen -W '
                                f'"{" ".join(positional)}" -- "$cur")); return;;')
    subcommands = " ".join(COMMANDS[1:])
    body = "\n".join(cases_values + cases_files)
    opts = "\n".join(cases_opts)
    return f"""# memcglang completion for bash: source <(memcglang completion bash)
_memcglang() {{
    local cur prev cmd opts
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    cmd=run
    case "${{COMP_WORDS[1]}}" in
        {"|".join(COMMANDS[1:])}) [[ $COMP_CWORD -gt 1 ]] && cmd="${{COMP_WORDS[1]}}";;
    esac
    case "$cmd:$prev" in
{body}
        {"|".join(f"*:{o}" for o in _numeric())}) return;;
    esac
    if [[ "$cur" == -* ]]; then
        case "$cmd" in
{opts}
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    COMPREPLY=()
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{subcommands}" -- "$cur"))
    fi
    COMPREPLY+=($(compgen -f -X '!*.mcg' -- "$cur") $(compgen -d -- "$cur"))
}}
complete -o filenames -F _memcglang memcglang mcg
"""


def zsh() -> str:
    return ("# memcglang completion for zsh: source <(memcglang completion zsh)\n"
            "autoload -U +X bashcompinit && bashcompinit\n" + bash().split("\n", 1)[1])


def fish() -> str:
    lines = ["# memcglang completion for fish: memcglang completion fish | source"]
    for prog in ("memcglang", "mcg"):
        lines.append(f"complete -c {prog} -n __fish_use_subcommand -f -a "
                     f"'{' '.join(COMMANDS[1:])}'")
        lines.append(f"complete -c {prog} -k -a '(__fish_complete_suffix .mcg)'")
        for command in COMMANDS:
            when = ("__fish_use_subcommand" if command == "run"
                    else f"'__fish_seen_subcommand_from {command}'")
            options, values, files = _options(command)
            for option in options:
                flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
                extra = ""
                if option in values:
                    extra = f" -x -a '{' '.join(values[option])}'"
                elif option in files:
                    extra = " -r -F"
                lines.append(f"complete -c {prog} -n {when} {flag}{extra}")
            positional = _positional_choices(command)
            if positional:
                lines.append(f"complete -c {prog} -n {when} -x -a '{' '.join(positional)}'")
    return "\n".join(lines) + "\n"


def script(shell: str) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell]()
