# shellcheck shell=bash
# shellcheck disable=SC2154  # dir, the pids, idle_*_kb, machine, out: set by scripts/bench
# scripts/bench --soak MINUTES: is memory flat under a steady load?
#
# Sourced by scripts/bench once the platform runs (it defines bench, rss_kb,
# workers_rss_kb, the pids and the idle RSS). soak_run MINUTES RATE submits
# noop jobs open loop at RATE/s for MINUTES (jobs-bench --duration), samples
# the VmRSS of the API and the workers every 10 s (of several processing
# workers, the largest), and prints one JSON line (also appended to $out)
# and a table:
#   idle   before the load
#   start  after the first minute of load (after half the run when it is
#          2 minutes or shorter): the baseline, once caches and pools are warm
#   end    when the last job is final
#   max    the largest sample
# Verdict: flat when, for every process, end - start <= max(3 MiB, 10% of start).

soak_run() {
  local minutes=$1 rate=$2 seconds=$(($1 * 60))
  local baseline_s=60
  ((seconds > 120)) || baseline_s=$((seconds / 2))
  local samples=$dir/rss-samples.txt
  say "soak: noop at $rate jobs/s for $minutes min, RSS sampled every 10 s"
  (
    t0=$(date +%s)
    while :; do
      echo "$(($(date +%s) - t0)) $(rss_kb "$api_pid") $(workers_rss_kb) $(rss_kb "$webhook_pid")"
      sleep 10
    done
  ) >"$samples" &
  local sampler=$!
  pids+=("$sampler")
  local line ok=1
  line=$(bench --workload noop --rate "$rate" --duration "$seconds" --connections 16 \
    --timeout $((seconds + 300))) || ok=0
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  echo "$seconds $(rss_kb "$api_pid") $(workers_rss_kb) $(rss_kb "$webhook_pid")" >>"$samples"
  ((ok)) || say "the load run failed: ${line:-no output}"

  # One row per process: name idle start end max (MiB) growth flat.
  local rows
  rows=$(awk -v b="$baseline_s" -v i1="$idle_api_kb" -v i2="$idle_worker_kb" \
    -v i3="$idle_webhook_kb" '
    { t[NR] = $1; for (k = 2; k <= 4; k++) v[NR, k] = $k }
    END {
      split("api worker webhook_worker", name, " "); idle[2] = i1; idle[3] = i2; idle[4] = i3
      for (r = 1; r <= NR && t[r] < b; r++);
      if (r > NR) r = NR
      for (k = 2; k <= 4; k++) {
        max = 0; for (n = 1; n <= NR; n++) if (v[n, k] > max) max = v[n, k]
        s = v[r, k] / 1024; e = v[NR, k] / 1024; g = e - s
        lim = s * 0.10 > 3 ? s * 0.10 : 3
        printf "%s %.1f %.1f %.1f %.1f %.1f %s\n", name[k - 1], idle[k] / 1024, s, e, max / 1024, g,
          (g <= lim ? "yes" : "no")
      }
    }' "$samples")
  local json="{\"workload\":\"soak\",\"minutes\":$minutes,\"rate\":$rate,\"rss_mb\":{" flat=true
  local name idle start end max growth f sep=""
  while read -r name idle start end max growth f; do
    json+="$sep\"$name\":{\"idle\":$idle,\"start\":$start,\"end\":$end,\"max\":$max,\"growth\":$growth}"
    sep=,
    [[ $f == yes ]] || flat=false
  done <<<"$rows"
  json+="},\"baseline_after_s\":$baseline_s,\"samples\":$(wc -l <"$samples"),\"flat\":$flat"
  local k v
  for k in accepted succeeded unfinished jobs_per_s accept_p99_ms e2e_p50_ms e2e_p99_ms; do
    v=$(field "$k" "$line" || true)
    [[ -z $v ]] || json+=",\"$k\":$v"
  done
  json+=",\"machine\":\"$machine\"}"
  echo "$json" | tee -a "$out"

  echo
  printf '%-15s %9s %9s %9s %9s %9s %5s\n' process 'idle MiB' 'start' 'end' 'max' 'growth' flat
  while read -r name idle start end max growth f; do
    printf '%-15s %9s %9s %9s %9s %9s %5s\n' "$name" "$idle" "$start" "$end" "$max" "$growth" "$f"
  done <<<"$rows"
  say "RSS $([[ $flat == true ]] && echo flat || echo NOT flat) over $minutes min" \
    "(end - start <= max(3 MiB, 10%) for each process)"
  [[ $flat == true && $ok == 1 ]]
}
