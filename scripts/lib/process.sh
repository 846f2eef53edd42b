# Process helpers shared by scripts/servers.d/*.sh (sourced). The caller sets $name and, for a server it
# starts itself, $pidfile.

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# wait_ready SECONDS CHECK LOG: poll CHECK until it succeeds; give up when the process dies or time runs
# out, showing the end of LOG and stopping what was started.
wait_ready() {
  local seconds=$1 check=$2 log=$3 i
  for ((i = 0; i < seconds * 2; i++)); do
    if $check; then return 0; fi
    running || break
    sleep 0.5
  done
  echo "$name: not ready after $seconds s; last log lines:" >&2
  tail -n 20 "$log" >&2 || true
  stop_process >/dev/null 2>&1 || true
  return 1
}

# stop_process [GRACE_SECONDS]: SIGTERM, then SIGKILL once the grace period (default 10 s) is over.
stop_process() {
  local grace=${1:-10} pid i
  if ! running; then rm -f "$pidfile"; echo "$name: not running"; return 0; fi
  pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  for ((i = 0; i < grace * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then rm -f "$pidfile"; echo "$name: stopped"; return 0; fi
    sleep 0.1
  done
  echo "$name: pid $pid ignored SIGTERM for $grace s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# serve ACTION: a server script's command line, start|stop|status|env. The script defines start, stop,
# ready (the server answers), address (where it answers, for status) and exports (its settings, for env).
serve() {
  case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
      if running && ready; then
        echo "$name: running at $(address)${pidfile:+ (pid $(cat "$pidfile"))}"
      else
        echo "$name: stopped"
        exit 3
      fi
      ;;
    env) exports ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
  esac
}
