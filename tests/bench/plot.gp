# Draws the benchmark's figures from cpuplug_bench's data: gnuplot -e "dir='DIR'" tests/bench/plot.gp
# writes DIR/boot.{png,svg} (time to all online against vCPUs, both INIT delays) and DIR/hotplug.{png,svg}.
if (!exists("dir")) dir = "bench-results"

set datafile missing "NaN"
set key top left
set grid
set logscale x 2
set logscale y 10
set xlabel "vCPUs"
set ylabel "ms from launch to all vCPUs online (median)"
set style data linespoints

do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1400,560 font ",10" noenhanced } else { set terminal svg size 1400,560 font ",10" noenhanced }
    set output dir."/boot.".fmt
    set multiplot layout 1,2 title "Boot: cpuplug vs QEMU (same guest ELF)"
    do for [u in "0 10000"] {
        set title "INIT-to-STARTUP delay ".u." us"
        plot dir."/boot-udelay".u.".dat" using 1:2 title "cpuplug parallel" lw 2 pt 7 lc rgb "#7b2cbf", \
             ""                          using 1:3 title "cpuplug serial"   lw 2 pt 5 dt 2 lc rgb "#7b2cbf", \
             ""                          using 1:4 title "QEMU parallel"    lw 2 pt 7 lc rgb "#2a9d8f", \
             ""                          using 1:5 title "QEMU serial"      lw 2 pt 5 dt 2 lc rgb "#2a9d8f"
    }
    unset multiplot
}

unset logscale
set logscale y 10
unset xlabel
set ylabel "ms (median)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -25 scale 0
set key top left
set yrange [0.5:*]
do for [fmt in "png svg"] {
    if (fmt eq "png") { set terminal pngcairo size 1100,520 font ",10" noenhanced } else { set terminal svg size 1100,520 font ",10" noenhanced }
    set output dir."/hotplug.".fmt
    set title "Hot-plug latency over QMP: device_add to _OST success, device_del to DEVICE_DELETED"
    plot dir."/hotplug.dat" using 2:xtic(1) title "cpuplug" lc rgb "#7b2cbf", "" using 3 title "QEMU" lc rgb "#2a9d8f"
}
