# Shared by scripts/vm-run and scripts/linux-guest: Debian's stock kernels, fetched from the archive with
# apt-get download (never committed) and unpacked into a cache folder. Source it; the functions print
# their reason on stderr and return non-zero on failure.

# debian_kernel_package META: the versioned image package a meta-package (linux-image-amd64,
# linux-image-rt-amd64) depends on, e.g. linux-image-6.1.0-57-amd64. Refreshes apt's lists once if they
# do not know the meta-package and we are root.
debian_kernel_package() {
    local meta=$1 p
    p=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
    if [ -z "$p" ] && [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
        p=$(apt-cache depends "$meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n1)
    fi
    if [ -z "$p" ]; then
        echo "cannot tell which kernel package $meta stands for (run apt-get update)" >&2
        return 1
    fi
    echo "$p"
}

# debian_kernel_fetch PKG BASE: BASE/boot (vmlinuz, config, System.map) and BASE/lib/modules of PKG,
# downloaded and unpacked unless BASE/.extracted says it was done already; then modules.dep, which the
# package leaves to its postinst.
debian_kernel_fetch() {
    local pkg=$1 base=$2
    if [ ! -e "$base/.extracted" ]; then
        echo "fetching $pkg into $(dirname "$base")" >&2
        mkdir -p "$(dirname "$base")"
        local tmp; tmp=$(mktemp -d "$(dirname "$base")/fetch.XXXXXX")
        if ! (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$pkg" >&2); then
            rm -rf "$tmp"; echo "apt-get download $pkg failed" >&2; return 1
        fi
        if ! { mkdir -p "$tmp/x" && dpkg-deb -x "$tmp"/*.deb "$tmp/x"; }; then
            rm -rf "$tmp"; echo "cannot unpack $pkg" >&2; return 1
        fi
        rm -rf "$base" && mkdir -p "$base"
        mv "$tmp/x/boot" "$tmp/x/lib" "$base/" && rm -rf "$tmp"
        touch "$base/.extracted"
    fi
    local kernel; kernel=$(ls "$base"/boot/vmlinuz-* | head -n1)
    local kver=${kernel##*/vmlinuz-}
    if [ ! -e "$base/lib/modules/$kver/modules.dep" ] && ! busybox depmod -b "$base" "$kver"; then
        echo "depmod failed for $kver" >&2; return 1
    fi
}

# debian_kernel_modules BASE KVER MODULE...: the paths (relative to BASE/lib/modules/KVER) of each module
# and of everything it depends on, one per line, dependencies first.
debian_kernel_modules() {
    local base=$1 kver=$2; shift 2
    local mods="$base/lib/modules/$kver" m line
    for m in "$@"; do
        line=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$mods/modules.dep") || { echo "$kver has no module $m" >&2; return 1; }
        local deps=${line#*:}
        # modules.dep lists a module's dependencies nearest first; load order is the reverse.
        echo "$deps" | tr ' ' '\n' | sed '/^$/d' | tac
        echo "${line%%:*}"
    done
}
