#!/usr/bin/env bash
# Stop the Slurm daemons that .ci/slurm-up.sh started (listed in $LMHT_SLURM_STATE/started), by their
# pid files, never by name, and remove the /etc/slurm/slurm.conf it wrote. Daemons that were already
# running before slurm-up.sh are left alone.
# Idempotent: nothing to do when nothing was started.
set -euo pipefail

STATE_DIR=${LMHT_SLURM_STATE:-/run/lmht-slurm}
declare -A PIDFILE=([slurmd]=/run/slurmd.pid [slurmctld]=/run/slurmctld.pid [munged]=/run/munge/munged.pid)

[ -f "$STATE_DIR/started" ] || exit 0
for daemon in slurmd slurmctld munged; do
    grep -qx "$daemon" "$STATE_DIR/started" || continue
    pidfile=${PIDFILE[$daemon]}
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && echo "slurm-down: $daemon (pid $pid) did not stop" >&2
    fi
    sed -i "/^$daemon\$/d" "$STATE_DIR/started"
    echo "slurm-down: stopped $daemon"
done
if grep -qx slurm.conf "$STATE_DIR/started"; then
    if grep -qF "# written by lmht .ci/slurm-up.sh" /etc/slurm/slurm.conf 2>/dev/null; then
        rm -f /etc/slurm/slurm.conf
        echo "slurm-down: removed /etc/slurm/slurm.conf"
    fi
    sed -i "/^slurm.conf\$/d" "$STATE_DIR/started"
fi
