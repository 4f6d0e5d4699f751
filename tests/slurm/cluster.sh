#!/bin/sh
# tests/slurm/cluster.sh up DIR | down DIR: a single-node Slurm cluster (munged,
# slurmctld, slurmd) under DIR, loopback only, for the tests of corod's Slurm groups.
# `up` prints the environment a client needs (SLURM_CONF) and returns once the node is
# idle; `down` cancels every job, waits for their steps to end and stops the daemons it
# started (by the pids it wrote). Needs Debian's slurmctld, slurmd, slurm-client and munge;
# exits 77 (skipped), saying why, without them.
set -eu
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: cluster.sh up|down DIR" >&2; exit 2; }
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
conf=$dir/slurm.conf

# The steps of a cluster, and everything they run: slurmstepd processes with its
# slurm.conf in their environment, and their descendants.
steps() {
    for p in $(pgrep -x slurmstepd 2>/dev/null); do
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_CONF=$conf" || continue
        echo "$p"
        kids=$p
        while [ -n "$kids" ]; do
            next=""
            for k in $kids; do
                for c in $(cat /proc/"$k"/task/*/children 2>/dev/null); do echo "$c"; next="$next $c"; done
            done
            kids=$next
        done
    done
}

down() {
    export SLURM_CONF="$conf"
    # Every job, whoever it belongs to (the tests run some as nobody), then wait for the
    # queue to empty so that slurmd stops its steps itself.
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    [ -z "$jobs" ] || scancel --quiet $jobs 2>/dev/null || true
    for i in $(seq 200); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.05; done
    for d in slurmd slurmctld munged; do
        if [ -f "$dir/$d.pid" ]; then
            kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
            for i in $(seq 100); do kill -0 "$(cat "$dir/$d.pid")" 2>/dev/null || break; sleep 0.05; done
            kill -9 "$(cat "$dir/$d.pid")" 2>/dev/null || true
            rm -f "$dir/$d.pid"
        fi
    done
    # What the daemons did not stop (a teardown in the middle of a test) goes now.
    left=$(steps)
    [ -z "$left" ] || kill -9 $left 2>/dev/null || true
}

if [ "$cmd" = down ]; then
    down
    exit 0
fi
[ "$cmd" = up ] || { echo "usage: cluster.sh up|down DIR" >&2; exit 2; }
for b in munged mungekey slurmctld slurmd srun sinfo scancel; do
    command -v "$b" >/dev/null 2>&1 || { echo "cluster.sh: skipped: no $b (Debian's slurmctld slurmd slurm-client munge)"; exit 77; }
done
mkdir -p "$dir/munge" "$dir/spool/ctld" "$dir/spool/d" "$dir/log"
chmod 0755 "$dir" "$dir/munge" # munged refuses a socket directory that is 0700
mungekey -c -f -k "$dir/munge/munge.key" >/dev/null 2>&1 || mungekey -c -k "$dir/munge/munge.key"
chmod 0400 "$dir/munge/munge.key"
munged -F --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" --force \
    >/dev/null 2>&1 &
echo $! > "$dir/munged.pid"
host=$(hostname -s)
cpus=$(( $(nproc) * 8 )) # more than the machine (config_overrides): concurrent steps must not queue behind a scheduling pass
cat > "$conf" <<CONF
ClusterName=corodtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
SlurmctldPort=$(( 20000 + $$ % 10000 ))
SlurmdPort=$(( 30000 + $$ % 10000 ))
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/slurmctld.real.pid
SlurmdPidFile=$dir/slurmd.real.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SchedulerParameters=batch_sched_delay=0
KillWait=5
DefMemPerCPU=64
ReturnToService=2
MpiDefault=none
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=65536 State=UNKNOWN
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=$host MaxTime=INFINITE State=UP PriorityTier=2
CONF
export SLURM_CONF="$conf"
for i in $(seq 100); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.05; done
slurmctld -D -f "$conf" >/dev/null 2>&1 &
echo $! > "$dir/slurmctld.pid"
for i in $(seq 100); do sinfo >/dev/null 2>&1 && break; sleep 0.05; done
slurmd -D -f "$conf" >/dev/null 2>&1 &
echo $! > "$dir/slurmd.pid"
for i in $(seq 200); do
    state=$(sinfo -h -o %t 2>/dev/null || true)
    [ "$state" = idle ] && { echo "SLURM_CONF=$conf"; exit 0; }
    sleep 0.05
done
echo "cluster.sh: the node did not come up (state: ${state:-none}); logs in $dir/log" >&2
down
exit 1
