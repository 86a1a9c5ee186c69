#!/bin/sh
# keeper.sh STATE_DIR COMMAND [ARG...]
# Runs COMMAND and, whenever it exits, records how and when (STATE_DIR/exits: "<time> <status>") and starts
# it again after a back-off that doubles from 0.25 s to 8 s (reset after 10 s of uptime), as a kubelet restarts
# a crashed container. STATE_DIR/pid holds the running child's PID and start time. The keeper and its child
# share one process group, so stopping the group (SIGTERM, then SIGKILL) ends both; on SIGTERM the keeper
# stops its child, waits for it and exits without restarting it. Waiting matters: the supervisor judges a pod
# stopped when its keeper is gone, and escalates to SIGKILL only while the keeper lives, so a keeper that left
# before a slow child (an Envoy still starting up under load) would leave that child running.
dir=$1
shift
delay_ms=250
child=
stop() {
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    exit 0
}
trap stop TERM INT HUP
while :; do
    started=$(date +%s)
    "$@" &
    child=$!
    echo "$child $started" > "$dir/pid.tmp" && mv "$dir/pid.tmp" "$dir/pid"
    wait "$child"
    status=$?
    echo "$(date +%s.%N) $status" >> "$dir/exits"
    if [ $(( $(date +%s) - started )) -ge 10 ]; then delay_ms=250; fi
    sleep "$(( delay_ms / 1000 )).$(printf '%03d' $(( delay_ms % 1000 )))"
    delay_ms=$(( delay_ms * 2 ))
    if [ "$delay_ms" -gt 8000 ]; then delay_ms=8000; fi
done
