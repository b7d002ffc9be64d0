#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for greenlab-store's tests and benchmarks.
#
#   source scripts/postgres-test.sh          # start; exports GREENLAB_TEST_POSTGRES_URL
#   eval "$(scripts/postgres-test.sh)"       # the same from any shell (prints `export ...`)
#   scripts/postgres-test.sh stop            # stop the server and delete its data
#
# It installs PostgreSQL from Debian packages if no server binaries are found (needs root and
# apt), creates a cluster in a temporary directory owned by the `postgres` user (initdb refuses
# to run as root), starts it on 127.0.0.1 at a free port with trust authentication, and
# creates the database `greenlab_test` (and a role `greenlab_pw` that must give its password,
# `greenlab-test-password`, for the password tests). Starting again while it runs reuses it. The state
# (data, log, port) lives in $GREENLAB_PG_DIR (default /tmp/greenlab-postgres-test).
# Nothing here is for production: no password, no TLS, loopback only.

_greenlab_pg_dir="${GREENLAB_PG_DIR:-/tmp/greenlab-postgres-test}"

_greenlab_pg_log() { echo "postgres-test: $*" >&2; }

_greenlab_pg_bindir() {
    local d
    for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -Vr); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# Runs a command as the server's owner: `postgres` when we are root, else ourselves.
_greenlab_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_greenlab_pg_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_greenlab_pg_start() (
    set -euo pipefail
    bin="$(_greenlab_pg_bindir)" || {
        _greenlab_pg_log "no PostgreSQL server binaries found; installing from Debian packages"
        if [ "$(id -u)" != 0 ]; then
            _greenlab_pg_log "not root: install postgresql-15 (or any postgresql server package) and rerun"
            exit 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql-15 >&2 || apt-get install -y -qq postgresql >&2
        bin="$(_greenlab_pg_bindir)" || { _greenlab_pg_log "installation gave no initdb"; exit 1; }
    }
    dir="$_greenlab_pg_dir"
    data="$dir/data"
    if [ -f "$dir/port" ] && _greenlab_pg_as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        port="$(cat "$dir/port")"
        _greenlab_pg_log "reusing the server already running on 127.0.0.1:$port"
    else
        if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
            useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        fi
        rm -rf "$dir"
        mkdir -p "$dir"
        if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
        chmod 700 "$dir"
        port=54329
        while ! _greenlab_pg_port_free "$port"; do
            port=$((port + 1))
            if [ "$port" -gt 54999 ]; then _greenlab_pg_log "no free port in 54329..54999"; exit 1; fi
        done
        _greenlab_pg_as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
            --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
            _greenlab_pg_log "initdb failed:"; cat "$dir/initdb.log" >&2; exit 1; }
        # Unix sockets in /tmp (named by port, so servers do not clash); TCP on loopback only.
        if ! _greenlab_pg_as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start \
            -o "-k /tmp -p $port -c listen_addresses=127.0.0.1 -c max_connections=300" >&2; then
            _greenlab_pg_log "the server did not start; its log:"; cat "$dir/server.log" >&2; exit 1
        fi
        echo "$port" >"$dir/port"
        echo "$bin" >"$dir/bindir"
        _greenlab_pg_as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres greenlab_test
        # A role that must log in with a password (everyone else is trusted), for the tests of
        # PGPASSWORD and ~/.pgpass: user greenlab_pw, password greenlab-test-password, owning
        # the database greenlab_pw.
        _greenlab_pg_as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d greenlab_test -qc \
            "CREATE ROLE greenlab_pw LOGIN PASSWORD 'greenlab-test-password'" >/dev/null
        _greenlab_pg_as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres -O greenlab_pw greenlab_pw
        _greenlab_pg_as_owner sed -i '1i host all greenlab_pw 127.0.0.1/32 scram-sha-256' "$data/pg_hba.conf"
        _greenlab_pg_as_owner "$bin/pg_ctl" -D "$data" reload >/dev/null
        _greenlab_pg_log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') running on 127.0.0.1:$port (data in $data)"
    fi
    echo "postgres://postgres@127.0.0.1:$port/greenlab_test"
)

_greenlab_pg_stop() (
    set -uo pipefail
    dir="$_greenlab_pg_dir"
    if [ ! -d "$dir/data" ]; then
        _greenlab_pg_log "no server in $dir"
        exit 0
    fi
    bin="$(cat "$dir/bindir" 2>/dev/null || _greenlab_pg_bindir)"
    _greenlab_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
    _greenlab_pg_log "stopped and removed $dir"
)

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: start, and export the URL into the caller's shell.
    if [ "${1:-start}" = stop ]; then
        _greenlab_pg_stop
    elif _greenlab_pg_url="$(_greenlab_pg_start)"; then
        export GREENLAB_TEST_POSTGRES_URL="$_greenlab_pg_url"
        echo "GREENLAB_TEST_POSTGRES_URL=$GREENLAB_TEST_POSTGRES_URL" >&2
        unset _greenlab_pg_url
    else
        _greenlab_pg_log "could not start PostgreSQL (see above)"
        return 1
    fi
else
    case "${1:-start}" in
        start)
            url="$(_greenlab_pg_start)" || exit 1
            echo "export GREENLAB_TEST_POSTGRES_URL=$url"
            ;;
        stop) _greenlab_pg_stop ;;
        *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
    esac
fi
