#!/usr/bin/env bash
# Reliability runs of studies under faults (issue 11), with the `greenlab` binary:
#
#   bench/cluster_faults.sh kill sqlite      # 8 worker processes, 200 trials, a random worker
#   bench/cluster_faults.sh kill postgres    #   SIGKILLed every 2-4 s and restarted
#   bench/cluster_faults.sh pg-restart       # PostgreSQL stopped and started mid-study
#   bench/cluster_faults.sh disk-full        # SQLite on a full file system (root: mounts a tmpfs)
#   bench/cluster_faults.sh read-only        # SQLite on a read-only file system (root)
#
# GREENLAB: the binary (default target/release/greenlab). PostgreSQL runs need the test server
# (`source scripts/postgres-test.sh`, which exports GREENLAB_TEST_POSTGRES_URL and keeps its
# state in GREENLAB_PG_DIR). Each run prints what it checked and `ok`, or fails with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
GREENLAB="${GREENLAB:-$PWD/target/release/greenlab}"
[[ -x "$GREENLAB" ]] || { echo "no binary at $GREENLAB; cargo build --release -p greenlab-cli" >&2; exit 2; }
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
    if mountpoint -q "$work/fs" 2>/dev/null; then umount "$work/fs" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The objective: a "training" of TRIAL_S seconds (default 1) printing its accuracy.
objective=(sh -c "sleep ${TRIAL_S:-1}; echo '{\"accuracy\": {x}}'")

config() { # name n_trials
    cat >"$work/$1.toml" <<EOF
name = "$1"
[space]
x = { type = "float", low = -1.0, high = 1.0 }
[sampler]
name = "random"
seed = 11
[stop]
n_trials = $2
EOF
    echo "$work/$1.toml"
}

start_worker() { # storage study i: pids[i] = the worker (leading its own process group)
    setsid "$GREENLAB" worker --storage "$1" --study "$2" --meter estimate --lease-s 600 \
        -- "${objective[@]}" >>"$work/worker-$3.log" 2>&1 &
    pids[$3]=$!
}

# Checks a finished study: distinct numbers, >= N complete, every lost trial with parameters
# retried, completed trials unchanged since the snapshots taken during the run.
check() { # storage study n
    "$GREENLAB" study export --storage "$1" --study "$2" --format json --out "$work/final.json"
    python3 - "$work/final.json" "$3" "$work"/snap-*.json <<'EOF'
import json, sys
final = json.load(open(sys.argv[1]))["trials"]
n = int(sys.argv[2])
numbers = [t["number"] for t in final]
assert len(numbers) == len(set(numbers)), "a trial number twice"
assert numbers == list(range(len(numbers))), "numbers not dense"
by = {t["number"]: t for t in final}
complete = [t for t in final if t["state"] == "complete"]
lost = [t for t in final if t["attrs"].get("lost")]
retried = [t for t in lost if "retried_as" in t["attrs"]]
for t in lost:
    if t["params"]:
        r = t["attrs"].get("retried_as")
        assert r is not None or t.get("retry_of") is not None, f"lost trial {t['number']} not retried"
        if r is not None:
            assert by[r]["retry_of"] in (t["number"], t.get("retry_of")), f"retry {r} does not link"
            assert by[r]["params"] == t["params"]
changed = 0
for snap in sys.argv[3:]:
    for t in json.load(open(snap))["trials"]:
        if t["state"] == "complete":
            f = by[t["number"]]
            if f["state"] != "complete" or f["values"] != t["values"] or f["params"] != t["params"]:
                changed += 1
assert changed == 0, f"{changed} completed trials lost or changed"
assert len(complete) >= n, f"only {len(complete)} complete of {n}"
running = [t for t in final if t["state"] in ("running", "waiting")]
retries = [t for t in final if t.get("retry_of") is not None]
print(f"trials {len(final)}: complete {len(complete)} (target {n}), lost {len(lost)}, "
      f"retries {len(retries)} ({len([t for t in retries if t['state'] == 'complete'])} complete), "
      f"left running/waiting {len(running)}, distinct numbers yes, completed trials unchanged "
      f"across {len(sys.argv) - 3} snapshots")
EOF
}

kill_run() { # sqlite|postgres
    local storage study n=200
    case "$1" in
        sqlite) storage="sqlite://$work/kill.db"; study="kill" ;;
        postgres)
            storage="${GREENLAB_TEST_POSTGRES_URL:?source scripts/postgres-test.sh first}"
            study="kill-$$-$(date +%s)" ;;
        *) echo "kill sqlite|postgres" >&2; exit 2 ;;
    esac
    "$GREENLAB" study create --config "$(config "$study" "$n")" --storage "$storage" \
        -- "${objective[@]}" >/dev/null
    local start=$SECONDS kills=0 snaps=0
    for i in 0 1 2 3 4 5 6 7; do start_worker "$storage" "$study" "$i"; done
    while true; do
        sleep "$((2 + RANDOM % 3))"
        local alive=0
        for i in 0 1 2 3 4 5 6 7; do kill -0 "${pids[$i]}" 2>/dev/null && alive=$((alive + 1)); done
        [[ $alive -gt 0 ]] || break
        "$GREENLAB" study export --storage "$storage" --study "$study" --format json \
            --out "$work/snap-$snaps.json" && snaps=$((snaps + 1))
        # Kill a random live worker (its whole group, as a scheduler does) and start another.
        local victim=$((RANDOM % 8))
        if kill -0 "${pids[$victim]}" 2>/dev/null; then
            kill -KILL -- "-${pids[$victim]}" 2>/dev/null || true
            wait "${pids[$victim]}" 2>/dev/null || true
            kills=$((kills + 1))
            start_worker "$storage" "$study" "$victim"
        fi
    done
    for i in 0 1 2 3 4 5 6 7; do wait "${pids[$i]}" 2>/dev/null || true; done
    pids=()
    echo "kill $1: 8 worker processes, $kills SIGKILLs, $((SECONDS - start)) s"
    check "$storage" "$study" "$n"
    echo ok
}

pg_restart() {
    local storage="${GREENLAB_TEST_POSTGRES_URL:?source scripts/postgres-test.sh first}"
    local dir="${GREENLAB_PG_DIR:-/tmp/greenlab-postgres-test}" study="restart-$$-$(date +%s)" n=100
    local bin
    bin="$(cat "$dir/bindir")"
    "$GREENLAB" study create --config "$(config "$study" "$n")" --storage "$storage" \
        -- "${objective[@]}" >/dev/null
    local start=$SECONDS
    for i in 0 1 2 3 4 5 6 7; do start_worker "$storage" "$study" "$i"; done
    sleep 5
    "$GREENLAB" study export --storage "$storage" --study "$study" --format json --out "$work/snap-0.json"
    local t0=$SECONDS
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    sleep 3
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
        -o "-k /tmp -p $(cat "$dir/port") -c listen_addresses=127.0.0.1 -c max_connections=300" >/dev/null
    echo "server down for $((SECONDS - t0)) s"
    local failed=0
    for i in 0 1 2 3 4 5 6 7; do wait "${pids[$i]}" || failed=$((failed + 1)); done
    pids=()
    echo "pg-restart: 8 worker processes, $failed exited with an error, $((SECONDS - start)) s"
    [[ $failed -eq 0 ]] || { tail -n 5 "$work"/worker-*.log; exit 1; }
    check "$storage" "$study" "$n"
    echo ok
}

on_tmpfs() { # size
    mkdir -p "$work/fs"
    mount -t tmpfs -o "size=$1" tmpfs "$work/fs"
}

disk_full() {
    on_tmpfs 1m
    local db="$work/fs/full.db"
    "$GREENLAB" study create --config "$(config full 100000)" --storage "sqlite://$db" \
        -- sh -c 'echo "{\"accuracy\": {x}, \"pad\": \"'"$(head -c 3000 /dev/zero | tr '\0' x)"'\"}"' >/dev/null
    # Leave a little room, then run until the file system is full.
    dd if=/dev/zero of="$work/fs/filler" bs=1k count=700 2>/dev/null || true
    set +e
    "$GREENLAB" worker --storage "sqlite://$db" --study full --meter estimate --trust-stored-command \
        >"$work/full.out" 2>"$work/full.err"
    local rc=$?
    set -e
    echo "disk-full: greenlab exited $rc; its error:"
    grep -m1 "error" "$work/full.err" || tail -3 "$work/full.err"
    grep -q "$db" "$work/full.err" || { echo "the error does not name $db" >&2; exit 1; }
    rm -f "$work/fs/filler"
    python3 - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
rows = c.execute("SELECT number, state, values_json FROM trials ORDER BY number").fetchall()
half = [r for r in rows if r[1] == "complete" and r[2] is None]
assert not half, f"half-written trials {half}"
print(f"integrity ok; {len(rows)} trials stored, {sum(r[1] == 'complete' for r in rows)} complete, none half-written")
EOF
    echo ok
}

read_only() {
    on_tmpfs 4m
    local db="$work/fs/ro.db"
    "$GREENLAB" tune --config "$(config ro 3)" --storage "sqlite://$db" --meter estimate \
        -- "${objective[@]}" >/dev/null 2>&1
    mount -o remount,ro "$work/fs"
    set +e
    "$GREENLAB" tune --config "$(config ro 6)" --storage "sqlite://$db" --meter estimate \
        -- "${objective[@]}" >"$work/ro.out" 2>"$work/ro.err"
    local rc=$?
    set -e
    echo "read-only: greenlab exited $rc; its error:"
    cat "$work/ro.err"
    grep -q "$db" "$work/ro.err" || { echo "the error does not name $db" >&2; exit 1; }
    mount -o remount,rw "$work/fs"
    "$GREENLAB" study export --storage "sqlite://$db" --study ro --format csv | grep -c ",complete," \
        | xargs -I{} echo "{} complete trials intact"
    echo ok
}

case "${1:-}" in
    kill) kill_run "${2:-sqlite}" ;;
    pg-restart) pg_restart ;;
    disk-full) disk_full ;;
    read-only) read_only ;;
    *) sed -n '2,13p' "$0"; exit 2 ;;
esac
