package etcdkit_test

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// examplePackages are the packages whose every exported function and method
// has a runnable example: the root package and the four a user imports
// beside it. The examples/ programs and internal/ are not API.
var examplePackages = []string{".", "discovery", "admin", "etcdtest", "etcdotel"}

// standardMethods implement a standard interface (error, fmt.Stringer,
// slog.LogValuer, encoding.TextMarshaler...): callers meet them through
// fmt, errors.Is or a log line rather than by name, so an example of
// their type, which shows them used that way, covers them.
var standardMethods = []string{"Error", "Unwrap", "Is", "String", "GoString", "LogValue", "MarshalText", "UnmarshalText"}

// TestExampleCoverage lists the exported functions and methods without a
// runnable example. Each one must be in exampleAllowList, with the reason
// it has none; an entry that now has an example must leave the list, so
// that it only shrinks.
func TestExampleCoverage(t *testing.T) {
	t.Parallel()
	var missing []string
	for _, dir := range examplePackages {
		missing = append(missing, withoutExample(t, dir)...)
	}
	for _, name := range missing {
		_, ok := exampleAllowList[name]
		assert.True(t, ok, "%s has no runnable example: add one (example_*_test.go, ending in // Output:)", name)
	}
	for name := range exampleAllowList {
		assert.True(t, slices.Contains(missing, name), "%s has an example now, or is gone: take it off exampleAllowList", name)
	}
}

// withoutExample returns the exported functions and methods of the
// package in dir, as "dir.Name" or "dir.Type.Method", that no example
// covers.
func withoutExample(t *testing.T, dir string) []string {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	var files []*ast.File
	for _, p := range paths {
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		require.NoError(t, err)
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/etcdkit/etcdkit/"+dir)
	require.NoError(t, err)
	prefix := pkg.Name + "."
	var missing []string
	for _, f := range pkg.Funcs {
		if len(f.Examples) == 0 {
			missing = append(missing, prefix+f.Name)
		}
	}
	for _, typ := range pkg.Types {
		for _, f := range typ.Funcs {
			if len(f.Examples) == 0 {
				missing = append(missing, prefix+f.Name)
			}
		}
		for _, m := range typ.Methods {
			covered := len(m.Examples) > 0 || len(typ.Examples) > 0 && slices.Contains(standardMethods, m.Name)
			if !covered {
				missing = append(missing, prefix+typ.Name+"."+m.Name)
			}
		}
	}
	return missing
}
