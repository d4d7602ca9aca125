package main

import (
	"bytes"
	"github.com/framesend/framesend/internal/testenv"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool is the project's rule for tests that need a tool: skip where
// it is missing, unless FRAMESEND_REQUIRE_TOOLS is set (as in CI), then fail.
func requireTool(t *testing.T, name, pkg string) {
	t.Helper()
	testenv.Tool(t, name, pkg)
}

// TestFleetOfTwenty is make fleet-sim with twenty senders: every message
// at every device, in order, none split, across ten SIGKILLs and restarts,
// and each killed sender's last will seen.
func TestFleetOfTwenty(t *testing.T) {
	requireTool(t, "mosquitto", "mosquitto")
	// Under -race the senders run with the race detector too: thirty
	// processes of MQTT in and serial out are the product's concurrency.
	bin := filepath.Join(t.TempDir(), "framesend")
	if err := testenv.GoBuild(bin, "../../cmd/framesend", true); err != nil {
		t.Fatal(err)
	}
	races, err := testenv.NewRaceLog()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := races.Rest(); r != "" {
			t.Errorf("a sender found a data race:\n%s", r)
		}
	}()
	var log bytes.Buffer
	res, err := simulate(options{framesend: bin, senders: 20, messages: 1000, log: &log})
	var table strings.Builder
	if res != nil {
		res.table(&table)
	}
	if testenv.Race {
		table.WriteString("(senders built with -race: their RSS is mostly the race detector's)\n")
	}
	t.Log("\n" + table.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.delivered != 20*1000 || res.complete != 20 || res.willsSeen != res.killed || res.killed != 10 {
		t.Errorf("delivered %d of 20000, %d of 20 devices complete, %d of %d last wills (want 10 killed)", res.delivered, res.complete, res.willsSeen, res.killed)
	}
	if len(res.rssKiB) != 30 {
		t.Errorf("peak RSS of %d processes, want 30 (20 senders and 10 restarted)", len(res.rssKiB))
	}
}
