package torchbind

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"weak"
)

// whileInC runs op with a hook that, each time a handle has been handed to
// a shim call and before C runs, collects garbage and then asks alive
// whether the argument survived. The argument is referenced by nothing but
// the call at that moment, as it would be while C is using it.
func whileInC(t *testing.T, alive func() bool, op func() error) {
	t.Helper()
	hooked, survived := 0, 0
	testHookAfterArg = func() {
		hooked++
		runtime.GC()
		if alive() {
			survived++
		}
	}
	err := op()
	testHookAfterArg = nil
	if err != nil {
		t.Fatal(err)
	}
	if hooked == 0 || survived != hooked {
		t.Fatalf("the argument was collected while a shim call used its handle (%d of %d checks)", hooked-survived, hooked)
	}
}

// TestCallKeepsArgumentsAlive drops every Go reference to a tensor (or a
// generator) except the one the operation receives, and forces a collection
// at the moment the shim is about to use the handle: the object must still
// be reachable, or its finalizer could free it in the middle of the call.
func TestCallKeepsArgumentsAlive(t *testing.T) {
	var w weak.Pointer[Tensor]
	var kept *Tensor
	defer func() { kept.Close() }()
	orphan := func() *Tensor {
		x, err := Full([]int64{2}, 2, Float32, CPU)
		if err != nil {
			t.Fatal(err)
		}
		// Without its finalizer a collected tensor only leaks, so that a
		// failure is reported instead of crashing in C on a freed handle.
		runtime.SetFinalizer(x, nil)
		w = weak.Make(x)
		return x
	}
	tensorAlive := func() bool { kept = w.Value(); return kept != nil }

	t.Run("tensor", func(t *testing.T) {
		whileInC(t, tensorAlive, func() error {
			y, err := Neg(orphan())
			y.Close()
			return err
		})
		kept.Close()
	})
	t.Run("list", func(t *testing.T) {
		whileInC(t, tensorAlive, func() error {
			y, err := Cat([]*Tensor{orphan()}, 0)
			y.Close()
			return err
		})
		kept.Close()
	})
	t.Run("generator", func(t *testing.T) {
		var wg weak.Pointer[Generator]
		var g *Generator
		defer func() { g.Close() }()
		whileInC(t, func() bool { g = wg.Value(); return g != nil }, func() error {
			y, err := RandPerm(func() *Generator {
				g, err := NewGenerator(1, CPU)
				if err != nil {
					t.Fatal(err)
				}
				runtime.SetFinalizer(g, nil)
				wg = weak.Make(g)
				return g
			}(), 4, CPU)
			y.Close()
			return err
		})
	})
}

// handleReaders are the only functions that may read a Tensor's or a
// Generator's handle field: the call methods that hand handles to C, and the
// lifetime functions that free them.
var handleReaders = map[string]bool{
	"call.arg": true, "call.args": true, "call.gen": true,
	"newTensor": true, "Tensor.free": true, "Tensor.Close": true, "Generator.Close": true,
	"WithHandle": true, // keeps its tensor alive until the function it calls returns
}

// TestShimCallsKeepArgumentsAlive checks the package's source: a handle is
// read only by handleReaders, and every handle a call hands out (c.arg,
// c.args, c.gen) is followed, after the C function that uses it, by one of
// that call's ending methods (c.err, c.tensor), which keep the arguments
// alive until the C function has returned.
func TestShimCallsKeepArgumentsAlive(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			for _, msg := range checkFunc(fset, fn) {
				t.Error(msg)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d functions: is the source where the test expects it?", checked)
	}
}

// checkFunc returns what is wrong with one function's use of handles.
func checkFunc(fset *token.FileSet, fn *ast.FuncDecl) []string {
	name := funcName(fn)
	var problems []string
	var cCalls []*ast.CallExpr          // calls of C.tb_* functions
	handouts := map[token.Pos]string{}  // position of c.arg/args/gen → call variable
	endings := map[string][]token.Pos{} // call variable → positions of c.err/c.tensor
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if n.Sel.Name == "h" && !handleReaders[name] {
				problems = append(problems, fset.Position(n.Pos()).String()+": "+name+" reads a handle directly; use a call")
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch {
			case x.Name == "C" && strings.HasPrefix(sel.Sel.Name, "tb_"):
				cCalls = append(cCalls, n)
			case sel.Sel.Name == "arg" || sel.Sel.Name == "args" || sel.Sel.Name == "gen":
				handouts[n.Pos()] = x.Name
			case sel.Sel.Name == "err" || sel.Sel.Name == "tensor":
				endings[x.Name] = append(endings[x.Name], n.Pos())
			}
		}
		return true
	})
	for pos, v := range handouts {
		if msg := checkHandout(fset, name, pos, v, cCalls, endings[v]); msg != "" {
			problems = append(problems, msg)
		}
	}
	return problems
}

// checkHandout checks one handle handed out at pos by call variable v: the
// first C function call ending after pos uses it, and an ending method of v
// must come after that C call.
func checkHandout(fset *token.FileSet, name string, pos token.Pos, v string, cCalls []*ast.CallExpr, ends []token.Pos) string {
	var use *ast.CallExpr
	for _, c := range cCalls {
		if c.End() > pos && (use == nil || c.End() < use.End()) {
			use = c
		}
	}
	where := fset.Position(pos).String() + ": " + name + ": "
	if use == nil {
		return where + "a handle is handed out but no C function uses it"
	}
	for _, e := range ends {
		if e > use.End() {
			return ""
		}
	}
	return where + "no " + v + ".err or " + v + ".tensor after the C call keeps the arguments alive"
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
