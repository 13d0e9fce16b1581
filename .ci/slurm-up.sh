#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine (munged, slurmctld, slurmd), for tests/test_slurm.py
# and for trying `snakemake --profile profiles/slurm-local` locally. Needs root and the Debian packages
# slurm-wlm and munge (apt-get install slurm-wlm munge).
#
# Idempotent: a daemon whose pid file names a live process is left alone. The daemons this script
# starts are listed in $LMHT_SLURM_STATE/started (default /run/lmht-slurm) so that .ci/slurm-down.sh
# stops only those, by pid file. It writes /etc/slurm/slurm.conf only if that file is absent or was
# written by this script (marker line below); set LMHT_SLURM_FORCE=1 to overwrite another one.
# slurm-down.sh removes it again: with a slurm.conf but no controller, every `scontrol` call (which the
# Snakemake Slurm plugin makes at start-up, even for local runs) waits 9 s for a timeout.
#
# Settings (why): no accounting storage, so `sacct` cannot report jobs and the Snakemake executor must
# poll with squeue (profile key slurm-status-command: squeue); MinJobAge=600 keeps finished jobs in
# squeue long enough for the executor to see them finish; proctrack/linuxproc and task/none avoid cgroups.
set -euo pipefail

STATE_DIR=${LMHT_SLURM_STATE:-/run/lmht-slurm}
CONF=/etc/slurm/slurm.conf
MARKER="# written by lmht .ci/slurm-up.sh"
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

die() { echo "slurm-up: $*" >&2; exit "${2:-1}"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
started() { echo "$1" >> "$STATE_DIR/started"; }

[ "$(id -u)" -eq 0 ] || die "must run as root" 2
for bin in munged slurmctld slurmd sinfo scontrol; do
    command -v "$bin" > /dev/null || die "$bin not found: apt-get install slurm-wlm munge" 3
done
mkdir -p "$STATE_DIR"
touch "$STATE_DIR/started"

H=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(free -m | awk '/Mem:/{print $2}') - 2000 ))
[ "$MEM" -gt 500 ] || MEM=500

if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF" && [ "${LMHT_SLURM_FORCE:-0}" != 1 ]; then
    die "$CONF exists and was not written by this script; set LMHT_SLURM_FORCE=1 to replace it" 4
fi
mkdir -p /etc/slurm /var/spool/slurmd /var/spool/slurmctld
cat > "$CONF.tmp" <<EOF
$MARKER
ClusterName=local
SlurmctldHost=$H
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MinJobAge=600
NodeName=$H CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=main Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"
grep -qx slurm.conf "$STATE_DIR/started" || started slurm.conf   # removed again by slurm-down.sh

if ! alive "$MUNGE_PID"; then
    mkdir -p /run/munge
    [ -s /etc/munge/munge.key ] || mungekey --create
    munged --force --pid-file="$MUNGE_PID"
    started munged
fi
if ! alive "$CTLD_PID"; then
    slurmctld
    started slurmctld
fi
if ! alive "$SLURMD_PID"; then
    slurmd
    started slurmd
fi

# wait for the node to become usable
for _ in $(seq 1 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
    case "$state" in
        idle|mixed|allocated) echo "slurm-up: node $H $state (partition main, $CPUS CPUs, $MEM MB)"; exit 0 ;;
        down*|drain*|fail*) scontrol update nodename="$H" state=resume > /dev/null 2>&1 || true ;;
    esac
    sleep 1
done
die "node $H did not become idle within 60 s (sinfo: ${state:-no answer})" 5
