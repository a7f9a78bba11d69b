# shellcheck shell=bash
# Local PostgreSQL and RabbitMQ servers for tests and `scripts/run`, each kept
# entirely under one directory DIR and listening on 127.0.0.1 only. Source
# this file; every function returns non-zero with a message on stderr on
# failure and prints nothing on success.
#
#   svc_free_port [N]                      N (default 1) distinct free loopback TCP ports
#   svc_start_postgres DIR PORT            cluster in DIR/pg, log DIR/pg.log, role+db `jobs`
#   svc_stop_postgres DIR
#   svc_start_rabbitmq DIR AMQP MGMT DIST [PROM]
#                                          node data in DIR/rabbit, stdout DIR/rabbit.out,
#                                          cookie DIR/.erlang.cookie; PROM defaults to a free port
#   svc_stop_rabbitmq DIR
#   svc_rabbitmqctl DIR ARGS...            rabbitmqctl against the node of DIR
#   svc_rabbitmq_cli DIR TOOL ARGS...      same for rabbitmq-diagnostics, -queues, -plugins
#   svc_rabbitmq_pid DIR                   prints the node's OS pid if it is running
#
# Both servers keep their data between runs: start, stop, start again works.
# RabbitMQ runs as the calling user (root included), never through the
# Debian wrapper in /usr/sbin (which would su to `rabbitmq` and read
# /etc/rabbitmq); PostgreSQL runs as `postgres` when called as root.
# Erlang's port mapper (epmd, port 4369) is shared by all nodes on the host;
# when these functions start it, it listens on 127.0.0.1 and outlives the node.

SVC_PG_BIN=${SVC_PG_BIN:-/usr/lib/postgresql/15/bin}
SVC_RABBIT_BIN=${SVC_RABBIT_BIN:-/usr/lib/rabbitmq/bin}
SVC_PG_TIMEOUT=${SVC_PG_TIMEOUT:-30}
SVC_RABBIT_TIMEOUT=${SVC_RABBIT_TIMEOUT:-60}
# The quorum queues' write-ahead log rolls over at this size (RabbitMQ's
# default is 512 MiB; see deploy/rabbitmq/20-jobs.conf for why ours is 16).
# Overridable only to measure the difference (README, Performance).
SVC_RABBIT_WAL_MAX_BYTES=${SVC_RABBIT_WAL_MAX_BYTES:-16777216}

_svc_err() { echo "services: $*" >&2; }

# Prints the last lines of a log file to stderr, if it exists.
_svc_tail() {
  [[ -s $1 ]] || return 0
  echo "--- last lines of $1:" >&2
  tail -n "${2:-30}" "$1" >&2
  echo "---" >&2
}

_svc_abs() { (cd "$1" && pwd -P); }

# Prints why RabbitMQ failed: the first errors logged to $1 after byte
# offset $2 (the boot failure reason comes first), then the last lines.
_svc_rabbit_failure() {
  local errors
  errors=$(tail -c "+$(($2 + 1))" "$1" 2>/dev/null | grep -m 12 -e '\[error\]' -e 'BOOT FAILED' || true)
  [[ -n $errors ]] && printf -- '--- first errors in %s:\n%s\n' "$1" "$errors" >&2
  _svc_tail "$1" 12
}

# True while something accepts TCP connections on 127.0.0.1:$1.
_svc_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

svc_free_port() {
  # Bind all sockets before closing any, so the N ports are distinct.
  /usr/bin/python3 - "${1:-1}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
}

# ---------------------------------------------------------------- PostgreSQL

# Runs a PostgreSQL tool as the cluster owner: `postgres` for root (initdb
# refuses root), the caller otherwise. cwd / avoids "could not change
# directory" warnings when the caller's cwd is private.
_svc_pg_as() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

_svc_pg_running() {
  [[ -f $1/pg/PG_VERSION ]] && _svc_pg_as "$SVC_PG_BIN/pg_ctl" status -D "$1/pg" >/dev/null 2>&1
}

# As root, PostgreSQL runs as user postgres, which must pass through DIR
# (made o+x here: mktemp -d makes 0700 directories) and every directory
# above it. Names the ones that stop it.
svc_pg_reachable() {
  local dir=${1:?usage: svc_pg_reachable DIR} d blocked=()
  ((EUID == 0)) || return 0
  runuser -u postgres -- test -x "$dir" && return 0
  chmod o+x "$dir" || return 1
  runuser -u postgres -- test -x "$dir" && return 0
  d=$dir
  while [[ $d != / ]]; do
    d=$(dirname "$d")
    [[ -n $(find "$d" -maxdepth 0 -perm -o=x) ]] || blocked=("$d" "${blocked[@]}")
  done
  _svc_err "user postgres (which runs PostgreSQL) cannot reach $dir; closed to other users: \
${blocked[*]:-?}. Open them with chmod o+x ${blocked[*]:-DIR}, or use a checkout under \
directories others may pass through"
  return 1
}

svc_start_postgres() {
  local dir=${1:?usage: svc_start_postgres DIR PORT} port=${2:?usage: svc_start_postgres DIR PORT}
  mkdir -p "$dir" || return 1
  dir=$(_svc_abs "$dir") || return 1
  local pgdata=$dir/pg log=$dir/pg.log out
  svc_pg_reachable "$dir" || return 1
  if [[ ! -f $pgdata/PG_VERSION ]]; then
    rm -rf "$pgdata" && mkdir -m 700 "$pgdata" || return 1
    if ((EUID == 0)); then chown postgres: "$pgdata" || return 1; fi
    if ! out=$(_svc_pg_as "$SVC_PG_BIN/initdb" -D "$pgdata" --auth-local=trust --auth-host=trust \
      --encoding=UTF8 --locale=C.UTF-8 2>&1); then
      echo "$out" >&2
      _svc_err "initdb failed in $pgdata"
      return 1
    fi
    # Per-start settings live in jobs.conf, rewritten below each time.
    echo "include_if_exists = 'jobs.conf'" >>"$pgdata/postgresql.conf" || return 1
  fi
  if _svc_pg_running "$dir"; then
    local running_port
    running_port=$(sed -n 4p "$pgdata/postmaster.pid")
    [[ $running_port == "$port" ]] && return 0
    _svc_err "PostgreSQL in $pgdata already runs on port $running_port, not $port"
    return 1
  fi
  cat >"$pgdata/jobs.conf" <<EOF || return 1
# Written by scripts/lib/services.sh at each start.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$pgdata'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = on
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  : >>"$log" || return 1
  if ((EUID == 0)); then chown postgres: "$pgdata/jobs.conf" "$log" || return 1; fi
  # setsid: keep the server out of the caller's process group, so a Ctrl-C
  # in the terminal doesn't stop it before the caller's own shutdown order.
  if ! _svc_pg_as setsid -w "$SVC_PG_BIN/pg_ctl" start -D "$pgdata" -l "$log" -w \
    -t "$SVC_PG_TIMEOUT" >/dev/null 2>&1; then
    _svc_tail "$log"
    _svc_err "PostgreSQL did not start in $pgdata on 127.0.0.1:$port"
    return 1
  fi
  local deadline=$((SECONDS + SVC_PG_TIMEOUT))
  local superuser=postgres
  ((EUID == 0)) || superuser=$(id -un)
  until "$SVC_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$superuser" -d postgres; do
    if ((SECONDS >= deadline)); then
      _svc_tail "$log"
      _svc_err "PostgreSQL on 127.0.0.1:$port not ready after ${SVC_PG_TIMEOUT}s"
      return 1
    fi
    sleep 0.2
  done
  local rc=0
  out=$(_svc_pg_as "$SVC_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$pgdata" -p "$port" \
    -d postgres 2>&1 <<'SQL'
SELECT 'CREATE ROLE jobs LOGIN SUPERUSER'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jobs') \gexec
SELECT 'CREATE DATABASE jobs OWNER jobs'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'jobs') \gexec
SQL
  ) || rc=$?
  if ((rc != 0)); then
    [[ -z $out ]] || echo "$out" >&2
    _svc_tail "$log" 10
    _svc_err "could not create role and database jobs on 127.0.0.1:$port (psql exit $rc)"
    return 1
  fi
}

svc_stop_postgres() {
  local dir=${1:?usage: svc_stop_postgres DIR} out
  [[ -d $dir ]] || return 0
  dir=$(_svc_abs "$dir") || return 1
  _svc_pg_running "$dir" || return 0
  if ! out=$(_svc_pg_as "$SVC_PG_BIN/pg_ctl" stop -D "$dir/pg" -m fast -w -t "$SVC_PG_TIMEOUT" 2>&1); then
    echo "$out" >&2
    _svc_tail "$dir/pg.log" 10
    _svc_err "PostgreSQL in $dir/pg did not stop"
    return 1
  fi
}

# ------------------------------------------------------------------ RabbitMQ

# Exports the environment that points RabbitMQ's scripts at DIR and nothing
# else. Call in a subshell. Every RABBITMQ_* variable of the caller is dropped
# first: the defaults would read /etc/rabbitmq and /var/lib/rabbitmq.
_svc_rabbit_env() {
  local dir=$1 r=$1/rabbit
  unset "${!RABBITMQ_@}" CONF_ENV_FILE ERL_FLAGS ERL_AFLAGS ERL_ZFLAGS
  local node
  node=$(cat "$r/nodename" 2>/dev/null) || return 1
  export HOME=$dir
  export RABBITMQ_NODENAME=$node
  export RABBITMQ_CONF_ENV_FILE=$r/rabbitmq-env.conf
  export RABBITMQ_CONFIG_FILE=$r/rabbitmq.conf
  export RABBITMQ_CONFIG_FILES=$r/conf.d
  export RABBITMQ_ADVANCED_CONFIG_FILE=$r/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$r/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$r/mnesia
  export RABBITMQ_LOG_BASE=$r/log
  export RABBITMQ_PID_FILE=$r/rabbit.pid
  export ERL_EPMD_ADDRESS=127.0.0.1 ERL_CRASH_DUMP=$r/erl_crash.dump
  # Loopback-only distribution for the CLI tools' own hidden node too.
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  if [[ -f $r/ports ]]; then
    local amqp dist
    read -r amqp _ dist _ <"$r/ports"
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$amqp RABBITMQ_DIST_PORT=$dist
  fi
  # RABBITMQ_SERVER_ERL_ARGS would replace RabbitMQ's defaults (+P, +t, ...);
  # the additional args add to them. No busy-waiting schedulers on 2 cores.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
}

svc_rabbitmq_pid() {
  local dir=${1:?usage: svc_rabbitmq_pid DIR} pid node
  [[ -f $dir/rabbit/rabbit.pid && -f $dir/rabbit/nodename ]] || return 1
  pid=$(<"$dir/rabbit/rabbit.pid") node=$(<"$dir/rabbit/nodename")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  # The pid must still be this node's VM, not a reused pid.
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "RABBITMQ_NODENAME=$node" || return 1
  echo "$pid"
}

svc_rabbitmq_cli() {
  local dir=${1:?usage: svc_rabbitmq_cli DIR TOOL ARGS...} tool=${2:?usage: svc_rabbitmq_cli DIR TOOL ARGS...}
  shift 2
  [[ -f $dir/rabbit/nodename ]] || { _svc_err "no RabbitMQ node in $dir"; return 1; }
  dir=$(_svc_abs "$dir") || return 1
  (_svc_rabbit_env "$dir" && cd "$dir" && exec "$SVC_RABBIT_BIN/$tool" "$@")
}

svc_rabbitmqctl() {
  local dir=${1:?usage: svc_rabbitmqctl DIR ARGS...}
  shift
  svc_rabbitmq_cli "$dir" rabbitmqctl "$@"
}

svc_start_rabbitmq() {
  local usage="usage: svc_start_rabbitmq DIR AMQP_PORT MGMT_PORT DIST_PORT [PROMETHEUS_PORT]"
  local dir=${1:?$usage} amqp=${2:?$usage} mgmt=${3:?$usage} dist=${4:?$usage} prom=${5:-}
  mkdir -p "$dir/rabbit" || return 1
  dir=$(_svc_abs "$dir") || return 1
  local r=$dir/rabbit out=$dir/rabbit.out
  if [[ ! -f $r/nodename ]]; then
    # Unique per directory; stored so the node (and its data) keeps its name.
    echo "jobs-$(printf '%s' "$dir" | sha1sum | cut -c1-10)@localhost" >"$r/nodename" || return 1
  fi
  if svc_rabbitmq_pid "$dir" >/dev/null; then
    local running
    read -r running _ <"$r/ports"
    [[ $running == "$amqp" ]] && return 0
    _svc_err "RabbitMQ node of $dir already runs with AMQP port $running, not $amqp"
    return 1
  fi
  if [[ ! -f $dir/.erlang.cookie ]]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$dir/.erlang.cookie") || return 1
  fi
  chmod 400 "$dir/.erlang.cookie" || return 1
  [[ -n $prom ]] || prom=$(svc_free_port 1) || return 1
  : >"$r/rabbitmq-env.conf" || return 1
  mkdir -p "$r/conf.d" "$r/log" "$r/mnesia" || return 1
  echo '[rabbitmq_management,rabbitmq_prometheus].' >"$r/enabled_plugins" || return 1
  cat >"$r/rabbitmq.conf" <<EOF || return 1
# Written by scripts/lib/services.sh at each start.
listeners.tcp.default = 127.0.0.1:$amqp
management.tcp.ip = 127.0.0.1
management.tcp.port = $mgmt
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $prom
# Everything in one place: the node's stdout, captured in DIR/rabbit.out.
log.file = false
log.console = true
log.console.level = info
log.console.use_colors = off
raft.wal_max_size_bytes = $SVC_RABBIT_WAL_MAX_BYTES
EOF
  echo "$amqp $mgmt $dist $prom" >"$r/ports" || return 1
  rm -f "$r/rabbit.pid"
  local offset
  offset=$(stat -c %s "$out" 2>/dev/null || echo 0)
  # setsid: out of the caller's process group (see svc_start_postgres). All
  # of stdio redirected, so no pipe of the caller (ctest) stays open; started
  # from a command substitution, so it is no job (nor child) of the caller.
  local launcher deadline=$((SECONDS + SVC_RABBIT_TIMEOUT))
  launcher=$( (_svc_rabbit_env "$dir" && cd "$dir" &&
    exec setsid "$SVC_RABBIT_BIN/rabbitmq-server") </dev/null >>"$out" 2>&1 &
    echo $!) || return 1
  until _svc_port_open "$amqp" &&
    curl -fsS -m 5 -u guest:guest "http://127.0.0.1:$mgmt/api/overview" >/dev/null 2>&1; do
    if ! kill -0 "$launcher" 2>/dev/null; then
      _svc_rabbit_failure "$out" "$offset"
      _svc_err "RabbitMQ node of $dir exited during start"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      _svc_rabbit_failure "$out" "$offset"
      _svc_err "RabbitMQ on 127.0.0.1:$amqp / management :$mgmt not ready after ${SVC_RABBIT_TIMEOUT}s"
      svc_stop_rabbitmq "$dir" || true
      kill "$launcher" 2>/dev/null || true
      return 1
    fi
    sleep 0.3
  done
}

svc_stop_rabbitmq() {
  local dir=${1:?usage: svc_stop_rabbitmq DIR} pid
  [[ -d $dir ]] || return 0
  dir=$(_svc_abs "$dir") || return 1
  pid=$(svc_rabbitmq_pid "$dir") || return 0
  # `stop PIDFILE` returns once the VM has exited.
  (_svc_rabbit_env "$dir" && cd "$dir" &&
    exec timeout "$SVC_RABBIT_TIMEOUT" "$SVC_RABBIT_BIN/rabbitmqctl" -q stop "$dir/rabbit/rabbit.pid") \
    >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 10)) sig=TERM
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      [[ $sig == KILL ]] && { _svc_err "RabbitMQ VM $pid of $dir does not die"; return 1; }
      sig=KILL deadline=$((SECONDS + 10))
    fi
    kill -s "$sig" "$pid" 2>/dev/null || true
    sleep 0.3
  done
  rm -f "$dir/rabbit/rabbit.pid"
}
