#!/usr/bin/env bash
# Debian's own Linux on cpuplug, its CPUs coming and going over QMP: boot the stock kernel with 2 vCPUs
# (room for 4), hot-add a CPU (Linux's ACPI processor driver makes it present, init onlines it as a udev
# rule would), remove it again (Linux offlines and ejects it), and show Linux's view at each step.
#   examples/linux-hotplug.sh          # VMM=path/to/vmm to use another build
# Needs /dev/kvm, socat, and Debian's kernel: scripts/linux-guest --prepare fetches it (docs/linux-guest.md).
# Without /dev/kvm: scripts/vm-run -- examples/linux-hotplug.sh runs it inside the nested VM.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vmm=${VMM:-$root/build/vmm/vmm}
[ -x "$vmm" ] || { echo "linux-hotplug: $vmm is not built (see the README's quick start)" >&2; exit 1; }
command -v socat >/dev/null || { echo "linux-hotplug: socat is missing (scripts/install-deps installs it)" >&2; exit 1; }
read -r kernel initrd < <("$root/scripts/linux-guest" --print generic) \
    || { echo "linux-hotplug: run scripts/linux-guest --prepare first" >&2; exit 1; }

work=$(mktemp -d /tmp/cpuplug-linux-XXXXXX)
socket=$work/qmp.sock
console=$work/console.txt
vmm_pid=""
cleanup() {
    [ -n "$vmm_pid" ] && kill "$vmm_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# Waits up to $2 seconds for a console line from init that contains $1; prints it.
linux_says() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if line=$(grep -a "cpuplug-linux: .*$1" "$console" 2>/dev/null | tail -n1) && [ -n "$line" ]; then
            echo "        linux: ${line#*cpuplug-linux: }" | tr -d '\r'
            return 0
        fi
        sleep 0.1
    done
    echo "linux-hotplug: Linux did not say '$1' within $2 s; its console:" >&2
    tail -n 30 "$console" >&2
    exit 1
}

start=$(now_ms)
"$vmm" --kernel "$kernel" --initrd "$initrd" --cmdline "console=ttyS0 quiet" --memory 512M \
    --cpus 2,maxcpus=4 --hotplug --qmp "unix:$socket" --serial "file:$console" --unplug-timeout-ms 60000 \
    2>"$work/vmm.log" &
vmm_pid=$!
echo "boot:   $(basename "$kernel"), 2 vCPUs of 4"
linux_says "init online=" 300
echo "        init ran $(($(now_ms) - start)) ms after vmm started"

coproc QMP { socat - "UNIX-CONNECT:$socket"; }
exec 3<&"${QMP[0]}" 4>&"${QMP[1]}"
read -r -t 10 _greeting <&3
# Sends a command and waits for its reply (events on the way are printed).
execute() {
    echo "$1" >&4
    while read -r -t 120 line <&3; do
        case $line in
        *'"return"'* | *'"error"'*) reply=$line; return 0 ;;
        *'"event"'*) echo "        event $(grep -o '"event": "[A-Z_]*"' <<<"$line" | cut -d'"' -f4)" ;;
        esac
    done
    echo "linux-hotplug: no reply to $1" >&2
    exit 1
}
execute '{"execute": "qmp_capabilities"}'

echo "add:    device_add host-x86_64-cpu core-id 2 (-smp 2,maxcpus=4 is one socket of four cores)"
t=$(now_ms)
execute '{"execute": "device_add", "arguments": {"driver": "host-x86_64-cpu", "id": "cpu2", "socket-id": 0, "core-id": 2, "thread-id": 0}}'
linux_says "cpu-added 2" 120
linux_says "online=0-2" 60
echo "        online in Linux $(($(now_ms) - t)) ms after device_add"

echo "remove: device_del cpu2"
t=$(now_ms)
execute '{"execute": "device_del", "arguments": {"id": "cpu2"}}'
while read -r -t 120 line <&3; do
    case $line in *'"DEVICE_DELETED"'*'"device": "cpu2"'*) break ;; esac
done
echo "        DEVICE_DELETED $(($(now_ms) - t)) ms after device_del"
linux_says "cpu-removed 2" 60

echo "off:    system_powerdown (Linux's ACPI power button driver; init powers off)"
execute '{"execute": "system_powerdown"}'
linux_says "health problems=" 60
wait "$vmm_pid" && vmm_pid=""
echo "done in $(($(now_ms) - start)) ms"
