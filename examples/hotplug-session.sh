#!/usr/bin/env bash
# CPU hot-plug over QMP, driven with socat. Run it from the top of the tree after building:
#   examples/hotplug-session.sh
# It boots the embedded guest on 2 of 16 possible vCPUs (4 sockets x 2 cores x 2 threads) with --hotplug,
# then adds a CPU, removes it, adds a whole socket, removes it, and quits. Lines starting with "->" are
# what is sent; the rest is what vmm answers, events included (CPU_ONLINE, ACPI_DEVICE_OST,
# CPU_OFFLINE, DEVICE_DELETED). The guest's console is in $console.
set -euo pipefail
vmm=${VMM:-build/vmm/vmm}
socket=$(mktemp -u /tmp/cpuplug-qmp-XXXXXX.sock)
console=$(mktemp /tmp/cpuplug-console-XXXXXX.txt)

"$vmm" --cpus 2,maxcpus=16,sockets=4,cores=2,threads=2 --hotplug --init-delay-us 0 \
    --qmp "unix:$socket" --serial "file:$console" &
vmm_pid=$!
trap 'kill $vmm_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
sleep 0.5 # let the guest boot, so that its events land in order below

commands=(
    '{"execute": "qmp_capabilities"}'
    '{"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", "id": "cpu2", "socket-id": 0, "core-id": 1, "thread-id": 0}, "id": 1}'
    '{"execute": "query-cpus-fast", "id": 2}'
    '{"execute": "device_del", "arguments": {"id": "cpu2"}, "id": 3}'
    '{"execute": "x-socket-add", "arguments": {"socket-id": 1}, "id": 4}'
    '{"execute": "x-socket-del", "arguments": {"socket-id": 1}, "id": 5}'
    '{"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", "socket-id": 0, "core-id": 0, "thread-id": 1}, "id": 6}'
    '{"execute": "quit", "id": 7}'
)
for command in "${commands[@]}"; do
    echo "-> $command" >&2
    echo "$command"
    sleep 0.3 # only so that the transcript reads in order; QMP itself needs no pauses
done | socat -t 1 - "UNIX-CONNECT:$socket"
wait $vmm_pid
echo "--- the guest's console ($console):"
cat "$console"
