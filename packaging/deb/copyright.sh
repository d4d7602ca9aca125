#!/bin/sh
# Writes /usr/share/doc/framesend/copyright for the binary given: framesend's
# own notice, then the licence of every Go module linked into it, read from
# the binary's build information (go version -m) and the module cache, so
# the list always matches what is shipped.
set -eu
bin=$1
GO=${GO:-go}
cat <<'HEAD'
framesend: send fixed-size binary frames to serial devices.

Copyright: the framesend authors.
License: the framesend authors have not chosen a licence for framesend yet;
 until they do, all rights are reserved.

framesend is a static Go binary. It contains the Go standard library
(Copyright 2009 The Go Authors, BSD-3-Clause, the licence of the Go
distribution it was built with) and the Go modules below, each under its own
licence, reproduced in full.
HEAD
modcache=$($GO env GOMODCACHE)
$GO version -m "$bin" | awk '$1 == "dep" { print $2, $3 }' | while read -r path ver; do
	dir=$modcache/$(printf '%s' "$path" | sed 's/[A-Z]/!&/g' | tr '[:upper:]' '[:lower:]')@$ver
	echo
	echo "------------------------------------------------------------------------"
	echo "$path $ver"
	echo
	found=
	for f in "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING* "$dir"/NOTICE*; do
		[ -f "$f" ] || continue
		sed 's/[[:space:]]*$//' "$f"
		found=1
	done
	if [ -z "$found" ]; then
		echo "copyright.sh: no licence file for $path $ver in $dir" >&2
		exit 1
	fi
done
