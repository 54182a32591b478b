#!/usr/bin/env bash
# A QMP session driven with socat, from greeting to quit. Run it from the top of the tree after building:
#   examples/qmp-session.sh
# It boots the embedded guest on 4 of 8 possible vCPUs with a QMP socket, sends a few commands (the lines
# starting with "->" are what is sent, the others are what vmm answers) and ends with quit.
set -euo pipefail
vmm=${VMM:-build/vmm/vmm}
socket=$(mktemp -u /tmp/cpuplug-qmp-XXXXXX.sock)

"$vmm" --cpus 4,maxcpus=8,sockets=2,cores=2,threads=2 --qmp "unix:$socket" --serial none &
vmm_pid=$!
trap 'kill $vmm_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done

commands=(
    '{"execute": "qmp_capabilities"}'
    '{"execute": "query-version", "id": 1}'
    '{"execute": "query-status", "id": 2}'
    '{"execute": "query-cpus-fast", "id": 3}'
    '{"execute": "query-hotpluggable-cpus", "id": 4}'
    '{"execute": "stop", "id": 5}'
    '{"execute": "query-status", "id": 6}'
    '{"execute": "cont", "id": 7}'
    '{"execute": "system_reset", "id": 8}'
    '{"execute": "query-nothing", "id": 9}'
    '{"execute": "quit", "id": 10}'
)
for command in "${commands[@]}"; do
    echo "-> $command" >&2
    echo "$command"
    sleep 0.1 # only so that the transcript reads in order; QMP itself needs no pauses
done | socat -t 1 - "UNIX-CONNECT:$socket"
wait $vmm_pid
