#!/usr/bin/env bash
# Brings up a real single-node Slurm on this machine: munged, slurmctld and slurmd on localhost, from Debian's
# packages (apt-get install slurm-wlm munge; needs root). Writes its config under $1 (default /tmp/local-slurm)
# and prints the line to export: SLURM_CONF=... . tests/test_benchmark.py uses it; by hand:
#   sudo bash tests/slurm/start_local_slurm.sh && export SLURM_CONF=/tmp/local-slurm/slurm.conf && sinfo
set -euo pipefail
DIR=${1:-/tmp/local-slurm}
for cmd in munged slurmctld slurmd sbatch; do
  command -v "$cmd" >/dev/null || { echo "error: $cmd not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "error: run as root (slurmd and munged need it)" >&2; exit 2; }
mkdir -p "$DIR/spool/ctld" "$DIR/spool/d" "$DIR/log"

# munge: the key comes with Debian's package; create one if missing
[ -s /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 2>/dev/null; }
chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
pgrep -x munged >/dev/null || su -s /bin/sh munge -c munged 2>/dev/null || munged --force

# one node with this machine's CPUs and memory, one partition
NODE=$(slurmd -C | head -1 | sed "s/^NodeName=[^ ]*/NodeName=localhost/; s/RealMemory=\([0-9]*\)/RealMemory=\1/")
cat > "$DIR/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$NODE State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
rm -f "$DIR/cgroup.conf"
export SLURM_CONF=$DIR/slurm.conf
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 1
slurmctld -i -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 60); do  # wait until the node accepts jobs
  if sinfo -h -N -o "%t" 2>/dev/null | grep -Eq "^(idle|mix|alloc)"; then echo "SLURM_CONF=$SLURM_CONF"; exit 0; fi
  sleep 1
done
echo "error: the Slurm node did not come up; see $DIR/log/" >&2
sinfo -N -l >&2 || true
exit 1
