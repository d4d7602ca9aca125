package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestProductLinksNoTestCode lists what the framesend binary is built from:
// the testing package (and the module's own test helpers) must not be in it,
// or a fake meant for the demo has pulled test code into the product.
func TestProductLinksNoTestCode(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = requireTool(t, "go", "golang-go")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/framesend/framesend/cmd/framesend").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages, want the binary's whole import graph:\n%s", len(deps), out)
	}
	for _, p := range deps {
		if p == "testing" || strings.HasPrefix(p, "testing/") || strings.HasSuffix(p, "test") && strings.HasPrefix(p, "github.com/framesend/") {
			t.Errorf("cmd/framesend depends on %s, a test package", p)
		}
	}
}
