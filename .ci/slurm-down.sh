#!/usr/bin/env bash
# Stop the daemons that .ci/slurm-up.sh started (listed in $LMHT_SLURM_STATE/started): slurmd,
# slurmctld, slurmdbd, MariaDB and munged, each by its pid file, never by name; and remove the
# /etc/slurm/slurm.conf and slurmdbd.conf it wrote. Daemons that were already running before slurm-up.sh
# are left alone. MariaDB's data directory (/var/lib/lmht-slurm) is kept for the next slurm-up.sh.
# Idempotent: nothing to do when nothing was started.
set -euo pipefail

STATE_DIR=${LMHT_SLURM_STATE:-/run/lmht-slurm}
MARKER="# written by lmht .ci/slurm-up.sh"
declare -A PIDFILE=(
    [slurmd]=/run/slurmd.pid
    [slurmctld]=/run/slurmctld.pid
    [slurmdbd]=/run/slurmdbd.pid
    [mariadb]=$STATE_DIR/mysql/mysqld.pid
    [munged]=/run/munge/munged.pid
)
declare -A CONFFILE=([slurm.conf]=/etc/slurm/slurm.conf [slurmdbd.conf]=/etc/slurm/slurmdbd.conf)

[ -f "$STATE_DIR/started" ] || exit 0
status=0
for daemon in slurmd slurmctld slurmdbd mariadb munged; do
    grep -qx "$daemon" "$STATE_DIR/started" || continue
    pidfile=${PIDFILE[$daemon]}
    if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm-down: $daemon (pid $pid) did not stop within 30 s" >&2
            status=1
            continue
        fi
    fi
    sed -i "/^$daemon\$/d" "$STATE_DIR/started"
    echo "slurm-down: stopped $daemon"
done
for name in slurm.conf slurmdbd.conf; do
    grep -qx "$name" "$STATE_DIR/started" || continue
    file=${CONFFILE[$name]}
    if grep -qF "$MARKER" "$file" 2>/dev/null; then
        rm -f "$file"
        echo "slurm-down: removed $file"
    fi
    sed -i "/^$name\$/d" "$STATE_DIR/started"
done
exit $status
