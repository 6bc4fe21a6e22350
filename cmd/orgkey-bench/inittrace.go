package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// initGroups are the owners package inits are summed by, in report order.
var initGroups = []string{"Go runtime and standard library", "aws-lambda-go", "SDK: service schemas",
	"SDK: credential chain (sts, sso, ssooidc, signin)", "SDK: the rest (endpoints, config, signer, ...)", "this service", "other modules"}

func initGroup(pkg string) string {
	switch {
	case !strings.Contains(strings.SplitN(pkg, "/", 2)[0], "."):
		return initGroups[0]
	case strings.HasPrefix(pkg, "github.com/aws/aws-lambda-go"):
		return initGroups[1]
	case strings.HasPrefix(pkg, "github.com/aws/aws-sdk-go-v2/") && strings.HasSuffix(pkg, "/schemas"):
		return initGroups[2]
	case slices.ContainsFunc([]string{"sts", "sso", "ssooidc", "signin"}, func(s string) bool {
		return strings.HasPrefix(pkg, "github.com/aws/aws-sdk-go-v2/service/"+s+"/") || pkg == "github.com/aws/aws-sdk-go-v2/service/"+s
	}):
		return initGroups[3]
	case strings.HasPrefix(pkg, "github.com/aws/"):
		return initGroups[4]
	case strings.HasPrefix(pkg, "github.com/mspvault/"):
		return initGroups[5]
	}
	return initGroups[6]
}

// initRow is where one binary's package initialisation goes, by owner: the median,
// over runs, of each owner's summed init clock (GODEBUG=inittrace=1).
type initRow struct {
	Bin     binary
	Total   time.Duration
	ByGroup map[string]time.Duration
}

// initTrace runs bin runs times with GODEBUG=inittrace=1 and no Runtime API to reach
// (it exits once main starts asking), and sums the init clock Go reports per package.
func initTrace(ctx context.Context, bin binary, runs int) (initRow, error) {
	per := map[string][]time.Duration{}
	var totals []time.Duration
	for range runs {
		cmd := exec.CommandContext(ctx, bin.Path)
		cmd.Env = []string{"GODEBUG=inittrace=1", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1", "AWS_REGION=us-east-1"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		_ = cmd.Run() // it fails to reach the Runtime API, after init
		sums := map[string]time.Duration{}
		var total time.Duration
		traced := 0
		out := stderr.String()
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			// init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
			// (fields: init, package, @start, "ms,", clock, "ms", "clock,", ...)
			f := strings.Fields(sc.Text())
			if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
				continue
			}
			v, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				continue
			}
			d := time.Duration(v * float64(time.Millisecond))
			sums[initGroup(f[1])] += d
			total += d
			traced++
		}
		if traced == 0 { // a table of zeros would read as a free init
			return initRow{}, fmt.Errorf("%s (%s): GODEBUG=inittrace=1 printed no init line: %.300s", bin.Name, bin.Kind, out)
		}
		for _, g := range initGroups {
			per[g] = append(per[g], sums[g])
		}
		totals = append(totals, total)
	}
	row := initRow{Bin: bin, Total: pct(totals, 50), ByGroup: map[string]time.Duration{}}
	for g, ds := range per {
		row.ByGroup[g] = pct(ds, 50)
	}
	return row, nil
}

func (b *bench) initTraces(bins []binary, runs int) ([]initRow, error) {
	var rows []initRow
	for _, bin := range bins {
		if bin.Kind != "floor" && bin.Kind != "function" {
			continue
		}
		row, err := initTrace(b.ctx, bin, runs)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}
