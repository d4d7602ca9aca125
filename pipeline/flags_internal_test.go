package pipeline

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The library speaks of its own fields and values: no string in its code
// names a command-line flag. A command maps the errors to its flags (as
// framesend's message does with ConfigError and PartialFrameError).
func TestNoStringNamesAFlag(t *testing.T) {
	flag := regexp.MustCompile(`(^|[^-\w])--[a-z]`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && flag.MatchString(lit.Value) {
				t.Errorf("%s: %s names a flag", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
	}
}
