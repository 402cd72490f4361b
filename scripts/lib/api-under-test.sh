# shellcheck shell=bash
# A live `deerflow server` for schemathesis, shared by scripts/test (the bounded run of CI) and
# scripts/fuzz-api (the long run). Source it, then:
#
#   api_start BINARY      # a server on free ports, in a temporary directory; sets api_port,
#                         # metrics_port, api_pid, api_dir; waits until /health/ready answers
#   api_schemathesis URL ARGS...   # schemathesis against openapi.yaml (run from the repository root)
#   api_stop              # stops the server and removes its directory
#
# Needs venv_bin (the Python venv's bin directory, with schemathesis).
#
# Checks left out: `positive_data_acceptance` (a schema-valid `params` object can still not match
# the workflow's declaration: 422). `unsupported_method` is checked: a method a path does not
# have answers 405 with `Allow`.

api_dir=""
api_pid=""
api_port=""
metrics_port=""

api_free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

api_start() { # api_start BINARY
    local binary=$1
    api_dir=$(mktemp -d "${TMPDIR:-/tmp}/deerflow-schemathesis.XXXXXX")
    mkdir -p "$api_dir/workflows"
    # Named like openapi.yaml's examples, with the parameters they send, so the examples phase
    # reaches real workflows and its trigger example creates a run.
    cat >"$api_dir/workflows/hello.yaml" <<'YAML'
name: hello
params:
  day: {type: string, default: "2024-06-01"}
  db_password: {type: string, default: "s3cret", secret: true}
schedule:
  cron: "0 2 * * *"
tasks:
  - id: say
    type: noop
YAML
    cat >"$api_dir/workflows/nightly-etl.yaml" <<'YAML'
name: nightly-etl
params:
  day: {type: string, default: "2024-06-01"}
  full_reload: {type: bool, default: false}
  db_password: {type: string, default: "s3cret", secret: true}
schedule:
  cron: "0 2 * * *"
tasks:
  - id: extract
    type: noop
YAML
    api_port=$(api_free_port)
    metrics_port=$(api_free_port)
    "$binary" server --workflows "$api_dir/workflows" --database "sqlite://$api_dir/deerflow.sqlite" \
        --api-port "$api_port" --metrics-port "$metrics_port" >"$api_dir/server.log" 2>&1 &
    api_pid=$!
    for _ in $(seq 1 100); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$api_port/health/ready', timeout=1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    printf 'the server did not become ready; its log:\n' >&2
    tail -50 "$api_dir/server.log" >&2
    return 1
}

api_schemathesis() { # api_schemathesis URL ARGS...
    local url=$1
    shift
    "$venv_bin/schemathesis" run openapi.yaml --url "$url" --checks all \
        --exclude-checks positive_data_acceptance \
        --mode all --generation-database none --no-color --workers 2 "$@"
}

api_stop() {
    if [ -n "$api_pid" ] && kill -0 "$api_pid" 2>/dev/null; then
        kill -TERM "$api_pid"
        wait "$api_pid" 2>/dev/null || true
    fi
    api_pid=""
    if [ -n "$api_dir" ]; then rm -rf "$api_dir"; fi
    api_dir=""
}
