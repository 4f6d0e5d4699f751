# fish completion for coroctl and corod.
set -l cmds add run logs group pause resume groups ping sleep gather cancel wait status list restart clean watch kill edit priority send

function __coroctl_ids
    coroctl list --newest --limit 50 --format tsv 2>/dev/null | cut -f1
end
function __coroctl_groups
    coroctl groups 2>/dev/null | awk '$1 == "name" { gsub(/"/, "", $2); print $2 }'
end

complete -c coroctl -f
complete -c coroctl -l socket -r -F -d "the daemon's socket"
complete -c coroctl -l json -d "answers as JSON"
complete -c coroctl -l jsonl -d "one JSON object a line"
complete -c coroctl -l version -d "the version"
complete -c coroctl -n "not __fish_seen_subcommand_from $cmds" -a "$cmds"
for c in add run sleep gather
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l name -r -d "a name"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l group -r -a "(__coroctl_groups)"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l after -r -d "ids it waits for"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l delay -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l timeout -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l priority -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l retries -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l retry-delay -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l shield
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l wait
end
for c in add run
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l env -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l default-env
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l cwd -r -a "(__fish_complete_directories)"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l stdin-file -r -F
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l grace -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l output-limit -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l umask -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l rlimit -r -a "nofile= core= cpu= as="
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l memory-max -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l pids-max -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l cpu-weight -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l cpu-quota -r
end
for c in list clean restart
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l state -r -a "pending running succeeded failed cancelled"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l group -r -a "(__coroctl_groups)"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l kind -r -a "exec sleep gather"
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l name -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l owner -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l since -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l until -r
    complete -c coroctl -n "__fish_seen_subcommand_from $c" -l older-than -r -d "7d, 12h, 30m"
end
complete -c coroctl -n "__fish_seen_subcommand_from cancel wait" -l group -r -a "(__coroctl_groups)"
complete -c coroctl -n "__fish_seen_subcommand_from kill" -s s -l signal -r -a "HUP INT QUIT USR1 USR2 TERM KILL STOP CONT WINCH"
complete -c coroctl -n "__fish_seen_subcommand_from edit" -l name -r
complete -c coroctl -n "__fish_seen_subcommand_from edit" -l group -r -a "(__coroctl_groups)"
complete -c coroctl -n "__fish_seen_subcommand_from edit" -l priority -r
complete -c coroctl -n "__fish_seen_subcommand_from edit" -l delay -r
complete -c coroctl -n "__fish_seen_subcommand_from send" -l eof
complete -c coroctl -n "__fish_seen_subcommand_from send" -s n -l no-newline
complete -c coroctl -n "__fish_seen_subcommand_from add run" -l stdin-pipe
complete -c coroctl -n "__fish_seen_subcommand_from pause resume" -l all
complete -c coroctl -n "__fish_seen_subcommand_from pause resume" -l running
complete -c coroctl -n "__fish_seen_subcommand_from list" -l newest
complete -c coroctl -n "__fish_seen_subcommand_from list" -l limit -r
complete -c coroctl -n "__fish_seen_subcommand_from list status" -l format -r -a "table tsv json jsonl"
complete -c coroctl -n "__fish_seen_subcommand_from restart" -l failed
complete -c coroctl -n "__fish_seen_subcommand_from logs" -l stderr
complete -c coroctl -n "__fish_seen_subcommand_from logs" -l all
complete -c coroctl -n "__fish_seen_subcommand_from logs" -s f -l follow
complete -c coroctl -n "__fish_seen_subcommand_from cancel" -l message -r
complete -c coroctl -n "__fish_seen_subcommand_from wait" -l mode -r -a "all first_completed first_exception"
complete -c coroctl -n "__fish_seen_subcommand_from wait" -l timeout -r
complete -c coroctl -n "__fish_seen_subcommand_from gather" -l return-exceptions
complete -c coroctl -n "__fish_seen_subcommand_from logs cancel wait status watch gather restart kill edit priority send" -a "(__coroctl_ids)"
complete -c coroctl -n "__fish_seen_subcommand_from pause resume group" -a "(__coroctl_groups)"
complete -c coroctl -n "__fish_seen_subcommand_from group" -l parallel -r
complete -c coroctl -n "__fish_seen_subcommand_from group" -l pause
complete -c coroctl -n "__fish_seen_subcommand_from group" -l resume

complete -c corod -l config -r -F -d "the configuration file"
complete -c corod -l socket -r -F
complete -c corod -l state-dir -r -a "(__fish_complete_directories)"
complete -c corod -l sync -r -a "full normal"
complete -c corod -f -a "(corod --help 2>/dev/null | string match -r -a -- '--[a-z][a-z-]*' | sort -u)"
