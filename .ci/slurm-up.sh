#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, as on a real site: munged, MariaDB, slurmdbd (job
# accounting, so `sacct` works), slurmctld and slurmd. For tests/test_slurm.py and for trying
# `snakemake --profile slurm --config suite=smoke` locally. Needs root and the Debian packages
# slurm-wlm, munge, slurmdbd and mariadb-server (`bash scripts/setup.sh --test` installs them).
#
#   sudo .ci/slurm-up.sh                   # with accounting (slurmdbd + MariaDB)
#   sudo .ci/slurm-up.sh --no-accounting   # AccountingStorageType=none: `sacct` fails, as on sites
#                                          # without accounting (tests the status-command pre-flight)
#   sudo .ci/slurm-down.sh                 # stops what this script started, by pid file
#
# Idempotent: a daemon whose pid file names a live process is left alone; running it again with the
# other mode rewrites slurm.conf and restarts slurmctld and slurmd (only if this script started them).
# Every daemon it starts is listed in $LMHT_SLURM_STATE/started (default /run/lmht-slurm) so that
# slurm-down.sh stops only those, by their pid files. It writes /etc/slurm/slurm.conf and
# /etc/slurm/slurmdbd.conf only if absent or written by this script (marker line below); set
# LMHT_SLURM_FORCE=1 to overwrite other ones. slurm-down.sh removes them again: with a slurm.conf but no
# controller, every `scontrol` call (which the Snakemake Slurm plugin makes at start-up, even for local
# runs) waits 9 s for a timeout.
#
# MariaDB runs from its own data directory ($LMHT_SLURM_DB_DIR, default /var/lib/lmht-slurm/mysql,
# created once and kept between runs), listening on 127.0.0.1:$LMHT_SLURM_DB_PORT (default 3307) and a
# socket in the state folder; the system's MariaDB, if any, is not touched.
#
# Settings (why): MinJobAge=600 keeps finished jobs visible to `squeue` for 10 minutes, so without
# accounting the executor can follow jobs with squeue (the workflow's pre-flight switches to it);
# proctrack/linuxproc and task/none avoid cgroups; ReturnToService=2 brings the node back after a restart.
set -euo pipefail

ACCOUNTING=1
case "${1:-}" in
    "") ;;
    --no-accounting) ACCOUNTING=0 ;;
    *) echo "usage: $0 [--no-accounting]" >&2; exit 2 ;;
esac

STATE_DIR=${LMHT_SLURM_STATE:-/run/lmht-slurm}
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARKER="# written by lmht .ci/slurm-up.sh"
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
DBD_PID=/run/slurmdbd.pid
DB_DIR=${LMHT_SLURM_DB_DIR:-/var/lib/lmht-slurm/mysql}
DB_PORT=${LMHT_SLURM_DB_PORT:-3307}
DB_RUN=$STATE_DIR/mysql              # socket and pid file, owned by the mysql user
DB_SOCK=$DB_RUN/mysqld.sock
DB_PID=$DB_RUN/mysqld.pid
DB_PASS_FILE=$(dirname "$DB_DIR")/slurmdbd.pass
CLUSTER=local

die() { echo "slurm-up: $*" >&2; exit "${2:-1}"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
ours() { grep -qx "$1" "$STATE_DIR/started"; }
started() { ours "$1" || echo "$1" >> "$STATE_DIR/started"; }
stop_ours() {  # stop_ours NAME PIDFILE: stop a daemon this script started (for a restart)
    local pid
    pid=$(cat "$2")
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    die "$1 (pid $pid) did not stop within 30 s" 6
}
wait_for() {  # wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.5 s
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq 1 $((seconds * 2))); do "$@" > /dev/null 2>&1 && return 0; sleep 0.5; done
    die "$what did not come up within $seconds s" 5
}
write_conf() {  # write_conf FILE MODE < content: replace FILE if it differs; returns 0 if it changed
    local file=$1 mode=$2 tmp
    if [ -f "$file" ] && ! grep -qF "$MARKER" "$file" && [ "${LMHT_SLURM_FORCE:-0}" != 1 ]; then
        die "$file exists and was not written by this script; set LMHT_SLURM_FORCE=1 to replace it" 4
    fi
    tmp=$(mktemp "$file.XXXXXX")
    cat > "$tmp"
    chmod "$mode" "$tmp"
    if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        return 1
    fi
    mv "$tmp" "$file"
    return 0
}

[ "$(id -u)" -eq 0 ] || die "must run as root" 2
bins=(munged slurmctld slurmd sinfo scontrol)
(( ACCOUNTING )) && bins+=(slurmdbd sacctmgr mariadbd mariadb-install-db mariadb)
for bin in "${bins[@]}"; do
    command -v "$bin" > /dev/null || die "$bin not found: bash scripts/setup.sh --test (or apt-get install \
slurm-wlm munge slurmdbd mariadb-server)" 3
done
mkdir -p "$STATE_DIR" /etc/slurm /var/spool/slurmd /var/spool/slurmctld
touch "$STATE_DIR/started"

H=$(hostname -s)
CPUS=$(nproc)
MEM=$(( $(free -m | awk '/Mem:/{print $2}') - 2000 ))
[ "$MEM" -gt 500 ] || MEM=500
if (( ACCOUNTING )); then
    ACCT="JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
else
    ACCT="JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none"
fi
conf_changed=0
write_conf "$CONF" 644 <<EOF && conf_changed=1
$MARKER
ClusterName=$CLUSTER
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
$ACCT
MpiDefault=none
MinJobAge=600
NodeName=$H CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=main Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
started slurm.conf   # removed again by slurm-down.sh

# A controller or node daemon running with the other configuration must be restarted.
if (( conf_changed )); then
    for daemon in slurmd:$SLURMD_PID slurmctld:$CTLD_PID; do
        name=${daemon%%:*} pidfile=${daemon#*:}
        alive "$pidfile" || continue
        ours "$name" || die "$name (pid $(cat "$pidfile")) was not started by this script and runs with another \
slurm.conf; stop it first" 4
        echo "slurm-up: restarting $name (slurm.conf changed)"
        stop_ours "$name" "$pidfile"
    done
fi

if ! alive "$MUNGE_PID"; then
    mkdir -p /run/munge
    [ -s /etc/munge/munge.key ] || mungekey --create
    munged --force --pid-file="$MUNGE_PID"
    started munged
fi

if (( ACCOUNTING )); then
    # MariaDB: own data directory, initialized once; a slurm user with a password kept next to it
    if ! alive "$DB_PID"; then
        if [ ! -d "$DB_DIR/mysql" ]; then
            echo "slurm-up: initializing MariaDB in $DB_DIR"
            mkdir -p "$DB_DIR"
            chown mysql:mysql "$DB_DIR"
            mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" --skip-test-db \
                --auth-root-authentication-method=socket > "$STATE_DIR/mariadb-install.log" 2>&1 \
                || die "mariadb-install-db failed: see $STATE_DIR/mariadb-install.log" 5
        fi
        mkdir -p "$DB_RUN"
        chown mysql:mysql "$DB_RUN"
        setsid mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" --socket="$DB_SOCK" \
            --pid-file="$DB_PID" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
            --log-error="$DB_RUN/mariadb.log" < /dev/null > /dev/null 2>&1 &
        started mariadb
        wait_for 60 "MariaDB (log: $DB_RUN/mariadb.log)" mariadb --socket="$DB_SOCK" -e "SELECT 1"
        wait_for 10 "MariaDB's pid file $DB_PID" test -s "$DB_PID"
    fi
    if [ ! -s "$DB_PASS_FILE" ]; then
        (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DB_PASS_FILE")
    fi
    PASS=$(cat "$DB_PASS_FILE")
    mariadb --socket="$DB_SOCK" <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$PASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
    write_conf "$DBD_CONF" 600 <<EOF || true
$MARKER
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DBD_PID
LogFile=$STATE_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$PASS
StorageLoc=slurm_acct_db
EOF
    started slurmdbd.conf
    if ! alive "$DBD_PID"; then
        slurmdbd
        started slurmdbd
    fi
    wait_for 60 "slurmdbd (log: $STATE_DIR/slurmdbd.log)" sacctmgr -n list cluster
    if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" > /dev/null
    fi
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
mode=$( (( ACCOUNTING )) && echo "with accounting (slurmdbd)" || echo "without accounting")
for _ in $(seq 1 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n1 || true)
    case "$state" in
        idle|mixed|allocated)
            echo "slurm-up: node $H $state (partition main, $CPUS CPUs, $MEM MB), $mode"
            exit 0 ;;
        down*|drain*|fail*) scontrol update nodename="$H" state=resume > /dev/null 2>&1 || true ;;
    esac
    sleep 1
done
die "node $H did not become idle within 60 s (sinfo: ${state:-no answer})" 5
