# bash completion for coroctl and corod                              -*- shell-script -*-
# Commands and their options; ids and groups are asked of the daemon (coroctl --json),
# quietly: with no daemon there is simply nothing to offer.

_coroctl_ids()
{
    coroctl ${_coroctl_sock:+--socket "$_coroctl_sock"} list --newest --limit 50 --format tsv 2>/dev/null | cut -f1
}

_coroctl_groups()
{
    coroctl ${_coroctl_sock:+--socket "$_coroctl_sock"} groups 2>/dev/null |
        awk '$1 == "name" { gsub(/"/, "", $2); print $2 }'
}

_coroctl()
{
    local cur prev words cword
    _init_completion || return
    local cmds="add run logs group pause resume groups ping sleep gather cancel wait status list
                restart clean watch kill edit priority send"
    local task_opts="--name --group --after --delay --timeout --priority --retries --retry-delay
                     --shield --wait"
    local job_opts="--env --default-env --cwd --stdin-file --stdin-pipe --grace --output-limit --umask --rlimit --memory-max
                    --pids-max --cpu-weight --cpu-quota"
    local filters="--state --group --kind --name --owner --since --until --older-than"
    local _coroctl_sock="" cmd="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        --socket) _coroctl_sock=${words[i + 1]}; ((i++)) ;;
        --json | --jsonl | --version) ;;
        -*) ;;
        *) cmd=${words[i]}; break ;;
        esac
    done
    # A job's own command line: complete it as a command of its own.
    for ((i = 1; i < cword; i++)); do
        if [[ ${words[i]} == -- ]]; then
            _command_offset $((i + 1))
            return
        fi
    done
    case $prev in
    --socket | --stdin-file) _filedir; return ;;
    --cwd) _filedir -d; return ;;
    --group) COMPREPLY=($(compgen -W "$(_coroctl_groups)" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "pending running succeeded failed cancelled" -- "$cur")); return ;;
    --kind) COMPREPLY=($(compgen -W "exec sleep gather" -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W "all first_completed first_exception" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "table tsv json jsonl" -- "$cur")); return ;;
    --signal | -s) COMPREPLY=($(compgen -W "HUP INT QUIT USR1 USR2 TERM KILL STOP CONT WINCH" -- "$cur")); return ;;
    --rlimit) COMPREPLY=($(compgen -W "nofile= core= cpu= as=" -- "$cur")); compopt -o nospace; return ;;
    --name | --after | --delay | --timeout | --priority | --retries | --retry-delay | --env | --grace | \
        --output-limit | --owner | --since | --until | --limit | --message | --parallel | --umask | \
        --memory-max | --pids-max | --cpu-weight | --cpu-quota | --older-than)
        return ;;
    esac
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$cmds --socket --json --jsonl --version --help" -- "$cur"))
        return
    fi
    local opts="" ids=0
    case $cmd in
    add) opts="$task_opts $job_opts --" ;;
    run) opts="$task_opts $job_opts --" ;;
    sleep) opts="$task_opts" ;;
    gather) opts="$task_opts --return-exceptions"; ids=1 ;;
    logs) opts="--stderr --all --follow"; ids=1 ;;
    cancel) opts="--message --group"; ids=1 ;;
    wait) opts="--mode --timeout --group"; ids=1 ;;
    kill) opts="--signal"; ids=1 ;;
    edit) opts="--name --group --priority --delay"; ids=1 ;;
    priority) ids=1 ;;
    send) opts="--eof --no-newline"; ids=1 ;;
    status) opts="$filters --newest --limit --format"; ids=1 ;;
    watch) ids=1 ;;
    list) opts="$filters --newest --limit --format" ;;
    clean) opts="$filters" ;;
    restart) opts="--failed $filters"; ids=1 ;;
    group)
        if [[ ${words[cword - 1]} == rm ]]; then
            COMPREPLY=($(compgen -W "$(_coroctl_groups)" -- "$cur"))
            return
        fi
        opts="set add rm --parallel --pause --resume" ;;
    pause | resume) COMPREPLY=($(compgen -W "$(_coroctl_groups) --all --running" -- "$cur")); return ;;
    esac
    if [[ $cur == -* || $ids == 0 ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(_coroctl_ids)" -- "$cur"))
    fi
}
complete -F _coroctl coroctl

_corod()
{
    local cur prev words cword
    _init_completion || return
    case $prev in
    --config | --socket) _filedir; return ;;
    --state-dir) _filedir -d; return ;;
    --sync) COMPREPLY=($(compgen -W "full normal" -- "$cur")); return ;;
    esac
    [[ $cur == -* ]] || return
    COMPREPLY=($(compgen -W "$(corod --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)" -- "$cur"))
}
complete -F _corod corod
