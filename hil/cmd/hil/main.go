// Command hil runs framesend's hardware-in-the-loop scenarios: Debian's
// stock kernel in QEMU (TCG) with real serial drivers and real udev, one
// line per check, exit 0 only if every check passes. make hil runs it.
//
//	go run ./hil/cmd/hil -framesend-amd64 bin/framesend -framesend-arm64 bin/framesend-arm64 [-run REGEXP] [-keep DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"time"

	"github.com/framesend/framesend/hil"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Stdout, os.Stderr, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, stdout, stderr io.Writer, args []string) int {
	fs := flag.NewFlagSet("hil", flag.ContinueOnError)
	fs.SetOutput(stderr)
	amd64 := fs.String("framesend-amd64", "bin/framesend", "framesend built static for amd64 (the guest's and the host's)")
	arm64 := fs.String("framesend-arm64", "bin/framesend-arm64", "framesend built static for arm64 (the aarch64 guest's)")
	modemlines := fs.String("modemlines", "bin/hil/modemlines-amd64", "the guest helper hil/guest/modemlines built static for amd64")
	smoketest := fs.String("smoketest", "bin/hil/smoketest-amd64", "hil/smoketest built static for amd64")
	pattern := fs.String("run", "", "run only the scenarios whose name matches this `regexp`")
	keep := fs.String("keep", "", "keep each scenario's console log in this `directory`")
	list := fs.Bool("list", false, "list the scenarios and exit")
	fs.StringVar(&debAmd64, "deb-amd64", "", "the framesend `package` (make deb) the systemd guest installs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	re, err := regexp.Compile(*pattern)
	if err != nil {
		fmt.Fprintf(stderr, "hil: -run %q: %v\n", *pattern, err)
		return 2
	}
	var chosen []hil.Scenario
	for _, s := range scenarios() {
		if re.MatchString(s.Name) {
			chosen = append(chosen, s)
		}
	}
	if *list {
		for _, s := range chosen {
			fmt.Fprintf(stdout, "%s (%s)\n", s.Name, s.Arch)
		}
		return 0
	}
	if len(chosen) == 0 {
		fmt.Fprintf(stderr, "hil: no scenario matches -run %q (see -list)\n", *pattern)
		return 2
	}

	// Without QEMU nothing here can run: say so, and fail where the tools
	// are required (CI), as framesend's other tool-dependent tests do.
	var missing []string
	for _, tool := range []string{"qemu-system-x86_64", "qemu-system-aarch64", "apt-get", "dpkg-deb", "depmod", "modprobe", "xz", "ldd", "debootstrap", "cpio", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "hil: cannot run: %v not installed (apt-get install qemu-system-x86 qemu-system-arm kmod xz-utils debootstrap cpio)\n", missing)
		if os.Getenv("FRAMESEND_REQUIRE_TOOLS") != "" {
			fmt.Fprintln(stderr, "hil: FRAMESEND_REQUIRE_TOOLS is set: failing")
			return 1
		}
		fmt.Fprintln(stderr, "hil: SKIP (set FRAMESEND_REQUIRE_TOOLS=1 to make this a failure)")
		return 0
	}

	cache := hil.OpenCache(stderr)
	runner := hil.NewRunner(cache, stdout, map[string]string{"amd64": *amd64, "arm64": *arm64}, guests(*modemlines, *smoketest))
	defer runner.Close()
	runner.Keep = *keep
	start := time.Now()
	prepared := map[string]error{}
	failed := 0
	for _, s := range chosen {
		err, done := prepared[s.Arch]
		if !done {
			t := time.Now()
			err = runner.Prepare(ctx, s.Arch, packages(s.Arch)...)
			prepared[s.Arch] = err
			if err == nil {
				fmt.Fprintf(stdout, "      %-48s %5.1fs  kernel, packages and guest image ready\n", "prepare "+s.Arch, time.Since(t).Seconds())
			}
		}
		if err != nil {
			fmt.Fprintf(stdout, "FAIL  %-48s        prepare %s: %v\n", s.Name, s.Arch, err)
			failed++
			continue
		}
		if !runner.Run(ctx, s) {
			failed++
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stdout, "hil: %d of %d scenarios passed in %.1fs\n", len(chosen)-failed, len(chosen), time.Since(start).Seconds())
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}
