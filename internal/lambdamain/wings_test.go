package lambdamain

import (
	"os/exec"
	"strings"
	"testing"
)

// TestFunctionsLinkNoWorkshop holds the tree's two wings apart: a function binary
// links the product (internal/...) and never the workshop, the local stack,
// emulators and benchmarks under internal/dev/ or the test support under
// internal/testing/.
func TestFunctionsLinkNoWorkshop(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../functions/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ../../functions/...: %v\n%s", err, out)
	}
	const module = "github.com/mspvault/orgkey/"
	var product int
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, module)
		if !ok {
			continue
		}
		product++
		if strings.HasPrefix(rel, "internal/dev/") || strings.HasPrefix(rel, "internal/testing/") {
			t.Errorf("a function links the workshop: %s", pkg)
		}
	}
	if product < 5 {
		t.Fatalf("go list found %d packages of this module behind functions/..., expected the four functions and their product packages", product)
	}
}
