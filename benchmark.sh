#!/usr/bin/env bash
# Runs every combination of scripts x env ids x seeds, on this machine (in parallel) or as a Slurm job array.
# Resumable: run it again with the same --out and finished runs are skipped, interrupted ones continue from their
# last checkpoint. Then: python benchmarks/report.py OUT  (table, curves, times, in OUT/report/).
#
#   bash benchmark.sh --scripts sdac_continuous_action.py sac_continuous_action.py \
#       --env-ids Hopper-v4 Walker2d-v4 --seeds 1 2 3 -- --total-timesteps 100000
#   bash benchmark.sh --slurm --slurm-time 08:00:00 --slurm-gpus 1 --env-ids Ant-v4 --seeds 1 2 3 4 5
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<'USAGE'
usage: benchmark.sh [options] [-- extra args for every run]
  --scripts S...        training scripts (default: sdac_continuous_action.py sac_continuous_action.py)
  --env-ids E...        env ids (default: Hopper-v4)
  --seeds N...          seeds (default: 1)
  --out DIR             sweep folder: runs/, logs/, done/ (default: sweep)
  --jobs N              runs at once on this machine (default: number of cores)
  --gpus N              GPUs to spread runs over, CUDA_VISIBLE_DEVICES round robin (default: as nvidia-smi lists)
  --checkpoint-interval N   env steps between checkpoints, for resuming (default: 50000)
  --args-for SCRIPT 'ARGS'  extra args for that script's runs only (repeatable), e.g.
                        --args-for sdac_continuous_action.py '--num-candidates 4 --num-reverse-samples 16'
  --dry-run             print each command exactly as it would run (environment included), run and create nothing
  --slurm               submit one Slurm job array (one run per array task) instead of running here
  --slurm-partition P, --slurm-time T (default 24:00:00), --slurm-cpus N (default 2), --slurm-mem M (default 8G),
  --slurm-gpus N (default 0), --slurm-max-parallel N (array throttle), --slurm-wait (wait, then summarise)
Each run: cd OUT && python REPO/SCRIPT --env-id E --seed N --exp-name NAME --checkpoint-interval K [extra]
(NAME is the script's name without _continuous_action.py; then its --args-for args); log in OUT/logs/NAME__E__N.log.
USAGE
}
die() { echo "error: $*" >&2; exit 2; }

scripts=(sdac_continuous_action.py sac_continuous_action.py); env_ids=(Hopper-v4); seeds=(1); extra=()
out=sweep; jobs=$(nproc); gpus=""; ckpt_interval=50000; dry_run=0; slurm=0; task_index=""
declare -A args_for=()
slurm_partition=""; slurm_time=24:00:00; slurm_cpus=2; slurm_mem=8G; slurm_gpus=0; slurm_max=""; slurm_wait=0
list() {  # collect values up to the next option
  local -n into=$1; shift; into=()
  while [ $# -gt 0 ] && [[ $1 != --* ]]; do into+=("$1"); shift; done
}
while [ $# -gt 0 ]; do
  opt=$1; shift
  case $opt in
    --scripts) list scripts "$@"; shift ${#scripts[@]} ;;
    --env-ids) list env_ids "$@"; shift ${#env_ids[@]} ;;
    --seeds) list seeds "$@"; shift ${#seeds[@]} ;;
    --out|--jobs|--gpus|--checkpoint-interval|--slurm-partition|--slurm-time|--slurm-cpus|--slurm-mem|--slurm-gpus|--slurm-max-parallel|--task-index)
      [ $# -gt 0 ] && [[ $1 != --* ]] || die "$opt needs a value"; val=$1; shift
      case $opt in
        --out) out=$val ;; --jobs) jobs=$val ;; --gpus) gpus=$val ;; --checkpoint-interval) ckpt_interval=$val ;;
        --slurm-partition) slurm_partition=$val ;; --slurm-time) slurm_time=$val ;; --slurm-cpus) slurm_cpus=$val ;;
        --slurm-mem) slurm_mem=$val ;; --slurm-gpus) slurm_gpus=$val ;; --slurm-max-parallel) slurm_max=$val ;;
        --task-index) task_index=$val ;;
      esac ;;
    --args-for) [ $# -ge 2 ] || die "--args-for needs a script and its args"; args_for[$1]="${args_for[$1]:-} $2"; shift 2 ;;
    --dry-run) dry_run=1 ;;
    --slurm) slurm=1 ;;
    --slurm-wait) slurm_wait=1 ;;
    --) extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $opt" ;;
  esac
done

# check the input before anything runs
[ ${#scripts[@]} -gt 0 ] && [ ${#env_ids[@]} -gt 0 ] && [ ${#seeds[@]} -gt 0 ] || die "--scripts, --env-ids and --seeds need at least one value"
for s in "${scripts[@]}"; do [ -f "$REPO/$s" ] || die "no such script: $REPO/$s"; done
for n in "${seeds[@]}"; do [[ $n =~ ^[0-9]+$ ]] || die "seeds must be non-negative integers, got '$n'"; done
for x in "${scripts[@]}" "${env_ids[@]}"; do [[ $x =~ [[:space:]] ]] && die "'$x': a script or env id holds a space"; done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '$jobs'"
[[ $ckpt_interval =~ ^[1-9][0-9]*$ ]] || die "--checkpoint-interval must be a positive integer, got '$ckpt_interval'"
for k in "${!args_for[@]}"; do
  printf '%s\n' "${scripts[@]}" | grep -qxF "$k" || die "--args-for $k: not one of --scripts"
done
for a in "${extra[@]}" ${args_for[@]+${args_for[@]}}; do
  case $a in
    --exp-name*|--env-id*|--seed|--seed=*|--resume*) die "$a is set by benchmark.sh; do not pass it in the extra args" ;;
    --checkpoint-interval|--checkpoint-interval=*) die "$a is benchmark.sh's option (it passes it to every run): put it before --" ;;
    --scripts|--env-ids|--seeds|--out|--jobs|--gpus|--args-for|--dry-run|--slurm|--slurm-*|--task-index|--help|\
    --scripts=*|--env-ids=*|--seeds=*|--out=*|--jobs=*|--gpus=*|--dry-run=*|--task-index=*)
      die "${a%%=*} is an option of benchmark.sh, not of the scripts: put it before --" ;;
  esac
done
if [ -z "$gpus" ]; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true); fi
[[ $gpus =~ ^[0-9]+$ ]] || die "--gpus must be a non-negative integer, got '$gpus'"
PYTHON=${PYTHON:-python}
[ $slurm = 1 ] && [ $dry_run = 0 ] && { command -v sbatch >/dev/null || die "--slurm needs sbatch on the PATH"; }
# every env id known to gymnasium before any run starts (a typo would otherwise fail each of its runs)
unknown=$("$PYTHON" -c 'import sys, gymnasium as gym
for e in sys.argv[1:]:
    try:
        gym.spec(e)
    except Exception:
        print(e)' "${env_ids[@]}" 2>/dev/null) || die "cannot check the env ids: $PYTHON cannot import gymnasium"
[ -z "$unknown" ] || die "unknown env id(s): $(echo $unknown)"

# every combination, in a fixed order (the Slurm array index refers to it)
combos=()
for s in "${scripts[@]}"; do for e in "${env_ids[@]}"; do for n in "${seeds[@]}"; do combos+=("$s $e $n"); done; done; done

name_of() { local b; b=$(basename "$1" .py); echo "${b%_continuous_action}"; }

# one run: skip if finished, resume from its last checkpoint if interrupted, else start afresh; one process per run
# (a lock on OUT/status/KEY.lock, held by the run's process until it exits: a second sweep started over the same
# folder, say right after Ctrl-C while the first still finishes its iteration, leaves that run alone)
run_one() {  # script env seed gpu_index
  local script=$1 env=$2 seed=$3 gpu=$4 name key log ckpt resume=() rc lock
  name=$(name_of "$script"); key="${name}__${env}__${seed}"; log="$out/logs/$key.log"
  if [ $dry_run = 0 ] && command -v flock >/dev/null; then
    exec {lock}>"$out/status/$key.lock"
    if ! flock -n "$lock"; then
      echo "busy     $key (another process is running it)"; echo busy > "$out/status/$key"; return 1
    fi
  fi
  if [ -e "$out/done/$key" ]; then echo "skipped  $key (finished before)"; echo skipped > "$out/status/$key"; return 0; fi
  ckpt=$(cd "$out" 2>/dev/null && ls -t runs/"${env}__${name}__${seed}"__*/checkpoint.pt 2>/dev/null | head -1)
  if [ -n "$ckpt" ]; then
    resume=(--resume "$ckpt")
  else  # attempts that died before their first checkpoint: moved aside, never deleted
    for d in "$out"/runs/"${env}__${name}__${seed}"__*; do
      [ -d "$d" ] && [ $dry_run = 0 ] && mkdir -p "$out/incomplete" && mv "$d" "$out/incomplete/"
    done
  fi
  local own=(); read -r -a own <<< "${args_for[$script]:-}"
  local cmd=("$PYTHON" "$REPO/$script" --env-id "$env" --seed "$seed" --exp-name "$name"
             --checkpoint-interval "$ckpt_interval" "${extra[@]}" "${own[@]}" "${resume[@]}")
  local cuda=""; [ "$gpus" -gt 0 ] && cuda="CUDA_VISIBLE_DEVICES=$((gpu % gpus)) "
  # the command exactly as it runs, environment included, quoted for a shell
  local shown; shown="cd $(printf '%q' "$out") && OMP_NUM_THREADS=$OMP_NUM_THREADS $cuda$(printf '%q ' "${cmd[@]}")"
  if [ $dry_run = 1 ]; then echo "$shown>> $(printf '%q' "$log") 2>&1"; return 0; fi
  echo "started  $key${resume:+ (resuming from ${ckpt})}"
  { echo "# $(date -u +%FT%TZ) $shown"; } >> "$log"
  if [ -n "$cuda" ]; then (cd "$out" && CUDA_VISIBLE_DEVICES=$((gpu % gpus)) "${cmd[@]}") >> "$log" 2>&1
  else (cd "$out" && "${cmd[@]}") >> "$log" 2>&1; fi
  rc=$?
  if [ $rc = 75 ]; then  # the scripts' EXIT_STOPPED: a safe stop (SIGINT, SIGTERM) with a checkpoint, resumable
    echo stopped > "$out/status/$key"; echo "stopped  $key (by a signal, with a checkpoint: the same command resumes it)"
    return 1
  fi
  if [ $rc = 0 ]; then touch "$out/done/$key"; echo finished > "$out/status/$key"; echo "finished $key"
  else echo failed > "$out/status/$key"; echo "failed   $key (exit $rc; log: $log)"; fi
  return $rc
}

summary() {  # counts of this invocation's status files; non-zero exit if any run failed or was stopped
  local f=0 x=0 s=0 t="" k st
  for c in "${combos[@]}"; do
    read -r sc en se <<< "$c"; k="$(name_of "$sc")__${en}__${se}"
    st=$(cat "$out/status/$k" 2>/dev/null || echo "not run")
    case $st in
      finished) f=$((f + 1)) ;; skipped) s=$((s + 1)) ;; stopped) t=$((t + 1)); echo "not finished: $k (stopped)" ;;
      busy) x=$((x + 1)); echo "not run: $k (another process is running it)" ;;
      *) x=$((x + 1)); echo "not finished: $k ($st)" ;;
    esac
  done
  echo "summary: ${#combos[@]} runs: $f finished, $x failed, $s skipped (finished before)${t:+, $t stopped (resumable)}. Folder: $out"
  [ $x = 0 ] && [ -z "$t" ]
}

clear_status() {  # this sweep's runs only: another sweep may share the folder
  for c in "${combos[@]}"; do read -r sc en se <<< "$c"; rm -f "$out/status/$(name_of "$sc")__${en}__${se}"; done
}

if [ $dry_run = 0 ]; then mkdir -p "$out/logs" "$out/done" "$out/status" "$out/runs"; fi
out=$(cd "$out" 2>/dev/null && pwd || echo "$out")

# a Slurm array task runs the one combination its index names
if [ -n "$task_index" ]; then
  [[ $task_index =~ ^[0-9]+$ ]] && [ "$task_index" -lt ${#combos[@]} ] || die "--task-index $task_index out of range"
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  read -r sc en se <<< "${combos[$task_index]}"
  run_one "$sc" "$en" "$se" 0
  exit $?
fi

if [ $slurm = 1 ]; then
  [ $dry_run = 0 ] && clear_status
  # the array task calls this script again with the same sweep plus its index
  pass=(--scripts "${scripts[@]}" --env-ids "${env_ids[@]}" --seeds "${seeds[@]}" --out "$out"
        --checkpoint-interval "$ckpt_interval")
  for k in "${!args_for[@]}"; do pass+=(--args-for "$k" "${args_for[$k]}"); done
  sb=(--array="0-$((${#combos[@]} - 1))${slurm_max:+%$slurm_max}" --job-name=sdac-sweep
      --output="$out/logs/slurm-%A_%a.out" --time="$slurm_time" --cpus-per-task="$slurm_cpus" --mem="$slurm_mem")
  [ -n "$slurm_partition" ] && sb+=(--partition="$slurm_partition")
  [ "$slurm_gpus" -gt 0 ] && sb+=(--gres="gpu:$slurm_gpus")
  [ $slurm_wait = 1 ] && sb+=(--wait)
  wrap="$(printf '%q ' bash "$REPO/benchmark.sh" "${pass[@]}" --task-index) \$SLURM_ARRAY_TASK_ID $(printf '%q ' -- "${extra[@]}")"
  # torch threads: one per allocated CPU. sbatch runs --wrap with /bin/sh, which does not read bash's quoting
  # ($'...' for a non-ASCII path): the command goes to bash, in POSIX single quotes
  wrap="export OMP_NUM_THREADS=\${SLURM_CPUS_PER_TASK:-1}; $wrap"
  wrap="exec bash -c '${wrap//\'/\'\\\'\'}'"
  if [ $dry_run = 1 ]; then echo "sbatch ${sb[*]} --wrap $(printf '%q' "$wrap")"; exit 0; fi
  echo "submitting ${#combos[@]} runs as one job array"
  sbatch "${sb[@]}" --wrap "$wrap"
  rc=$?
  if [ $slurm_wait = 1 ]; then summary; exit $?; fi
  exit $rc
fi

# locally: at most $jobs runs at once, one torch thread per core share
[ $dry_run = 0 ] && clear_status
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))}
i=0
for c in "${combos[@]}"; do
  read -r sc en se <<< "$c"
  if [ $dry_run = 0 ]; then while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done; fi
  run_one "$sc" "$en" "$se" $i &
  i=$((i + 1))
  [ $dry_run = 1 ] && wait
done
wait
[ $dry_run = 1 ] && exit 0
summary
