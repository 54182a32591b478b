#!/usr/bin/env bash
# The cpuplug demo: boot a VM with one socket of 4 vCPUs and room for a second, hot-add that socket over
# QMP, remove it again, and print what happened with timings. Run it after building (README quick start):
#   examples/demo.sh            # VMM=path/to/vmm to use another build
# Needs socat (scripts/install-deps installs it). Everything it creates is removed when it exits.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vmm=${VMM:-$root/build/vmm/vmm}
[ -x "$vmm" ] || { echo "demo: $vmm is not built (see the README's quick start)" >&2; exit 1; }
command -v socat >/dev/null || { echo "demo: socat is missing (scripts/install-deps installs it)" >&2; exit 1; }

work=$(mktemp -d /tmp/cpuplug-demo-XXXXXX)
socket=$work/qmp.sock
console=$work/console.txt
vmm_pid=""
cleanup() {
    [ -n "$vmm_pid" ] && kill "$vmm_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
start=$(now_ms)

# 4 CPUs present in socket 0; socket 1 (4 more) empty until we plug it.
"$vmm" --cpus 4,sockets=2,cores=4,maxcpus=8 --hotplug --init-delay-us 0 \
    --qmp "unix:$socket" --serial "file:$console" --boot-report "$work/boot.json" 2>"$work/vmm.log" &
vmm_pid=$!
for _ in $(seq 200); do grep -q "CPUs online" "$console" 2>/dev/null && break; sleep 0.02; done
grep -q "CPUs online" "$console" || { echo "demo: the guest did not boot:" >&2; cat "$work/vmm.log" >&2; exit 1; }
total=$(grep -o '"total_ms": *[0-9.]*' "$work/boot.json" | grep -o '[0-9.]*$' || true)
echo "booted: $(grep -o 'smp: .*' "$console" | tr -d '\r')"
printf '        vmm reported all 4 online %.1f ms after it started\n' "${total:-0}"

# One QMP connection for the whole session, as a client program would hold it.
coproc QMP { socat - "UNIX-CONNECT:$socket"; }
exec 3<&"${QMP[0]}" 4>&"${QMP[1]}"
read -r -t 10 greeting <&3
echo "QMP:    $(grep -o '"qemu": {[^}]*}' <<<"$greeting")"

# Sends a command; prints events that arrive before its reply; the reply goes to $reply.
execute() {
    echo "$1" >&4
    while read -r -t 10 line <&3; do
        case $line in
        *'"return"'* | *'"error"'*) reply=$line; return 0 ;;
        *'"event"'*) echo "        event $(grep -o '"event": "[A-Z_]*"' <<<"$line" | cut -d'"' -f4)" ;;
        esac
    done
    echo "demo: no reply to $1" >&2
    exit 1
}
# Waits for $2 events named $1, printing each with the time since $3 (ms).
wait_events() {
    local name=$1 want=$2 since=$3 seen=0
    while [ "$seen" -lt "$want" ] && read -r -t 10 line <&3; do
        case $line in *"/lapic\""*) ;; # a CPU's APIC child: DEVICE_DELETED comes for it too
        *"\"event\": \"$name\""*)
            seen=$((seen + 1))
            echo "        +$(($(now_ms) - since)) ms  $name $(grep -o '"cpu-index": [0-9]*\|"path": "[^"]*"' <<<"$line" | head -1)"
            ;;
        esac
    done
    [ "$seen" -eq "$want" ] || { echo "demo: only $seen of $want $name events" >&2; exit 1; }
}
count_cpus() { execute '{"execute": "query-cpus-fast"}'; online=$(grep -o '"cpu-index"' <<<"$reply" | wc -l); }

execute '{"execute": "qmp_capabilities"}'
execute '{"execute": "query-hotpluggable-cpus"}'
slots=$(grep -o '"props"' <<<"$reply" | wc -l)
plugged=$(grep -o '"qom-path"' <<<"$reply" | wc -l)
echo "slots:  $slots possible CPUs, $plugged plugged; QEMU's CPU type $(grep -o '"type": "[^"]*"' <<<"$reply" | head -1 | cut -d'"' -f4)"

echo "add:    x-socket-add socket-id 1 (every free slot of the socket, one ACPI notification)"
t=$(now_ms)
execute '{"execute": "x-socket-add", "arguments": {"socket-id": 1}}'
wait_events CPU_ONLINE 4 "$t"
count_cpus
echo "        now $online vCPUs"

echo "remove: x-socket-del socket-id 1 (the guest takes each CPU down, then ejects it)"
t=$(now_ms)
execute '{"execute": "x-socket-del", "arguments": {"socket-id": 1}}'
wait_events DEVICE_DELETED 4 "$t"
count_cpus
echo "        now $online vCPUs"

execute '{"execute": "quit"}'
wait "$vmm_pid" && vmm_pid=""
echo "guest:  what the guest's console said about it"
grep 'acpi:' "$console" | tr -d '\r' | sed 's/^/        /'
echo "done in $(($(now_ms) - start)) ms (single CPUs with device_add/device_del: examples/hotplug-session.sh)"
