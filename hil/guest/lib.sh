# Helpers for scenario scripts. The host parses these console lines:
#   @@BEGIN NAME / @@| NAME <output line> / @@END NAME rc=N s=SECONDS
#                                         one command's output, exit code and run time
#   @@SYNC NAME                                               the guest reached a point
# and answers a wait_host NAME with a console line "@@GO NAME".

now() { cut -d' ' -f1 /proc/uptime; }

# emit NAME RC START: print /tmp/out.NAME as NAME's block, with its exit
# code and how long it ran since START (an uptime).
emit() {
	echo "@@BEGIN $1"
	sed "s/^/@@| $1 /" "/tmp/out.$1"
	echo "@@END $1 rc=$2 s=$(awk "BEGIN { print $(now) - $3 }")"
}

# run NAME CMD...: run CMD to the end and print its block.
run() {
	n=$1
	shift
	t=$(now)
	"$@" >"/tmp/out.$n" 2>&1 </dev/null
	emit "$n" $? "$t"
}

# start NAME CMD...: run CMD in the background; finish NAME prints its block.
start() {
	n=$1
	shift
	eval "t_$n=$(now)"
	"$@" >"/tmp/out.$n" 2>&1 </dev/null &
	eval "pid_$n=$!"
}

finish() {
	eval "p=\$pid_$1 t=\$t_$1"
	wait "$p"
	emit "$1" $? "$t"
}

pid() { eval "echo \$pid_$1"; }

# wait_open DEV NAME: wait (up to 10 s) until NAME's process has DEV open.
wait_open() {
	p=$(pid "$2")
	dev=$(readlink -f "$1")
	i=0
	while [ $i -lt 500 ]; do
		for f in /proc/"$p"/fd/*; do
			[ "$(readlink "$f")" = "$dev" ] && return 0
		done
		usleep 20000
		i=$((i + 1))
	done
	echo "@@SYNC timeout: $2 never opened $1"
	return 1
}

# wait_node PATH: wait (up to 10 s) until PATH exists.
wait_node() {
	i=0
	while [ ! -e "$1" ] && [ $i -lt 500 ]; do
		usleep 20000
		i=$((i + 1))
	done
	[ -e "$1" ]
}

sync_host() { echo "@@SYNC $1"; }

# wait_host NAME: wait for the host's "@@GO NAME" on the console.
wait_host() {
	while read -r l; do
		case "$l" in *"@@GO $1"*) return 0 ;; esac
	done
}

# udev_start: Debian's systemd-udevd, then replay the devices seen so far.
udev_start() {
	/lib/systemd/systemd-udevd --daemon 2>/tmp/udevd.log
	udevadm trigger --action=add
	udevadm settle --timeout=20
}

# devices_ready PATH...: wait for each device node (USB devices enumerate
# after the modules load, so they may not be there yet), then for udev to
# have finished with them.
devices_ready() {
	for p in "$@"; do
		wait_node "$p" || echo "@@SYNC timeout: no $p"
	done
	[ -S /run/udev/control ] && udevadm settle --timeout=20
	return 0
}
