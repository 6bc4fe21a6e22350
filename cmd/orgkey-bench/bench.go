package main

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/mspvault/orgkey/internal/emulators"
	"github.com/mspvault/orgkey/internal/lambdarun"
	"github.com/mspvault/orgkey/internal/perf"
	"github.com/mspvault/orgkey/internal/samtemplate"
)

type bench struct {
	ctx context.Context
	cfg aws.Config
	// Clients of the floor's bare round trips, made once like a warm function's.
	db    *dynamodb.Client
	kms   *kms.Client
	ses   *sesv2.Client
	stack *emulators.Stack
	world *perf.World
	tmp   string
}

func goBuild(ctx context.Context, root, out, pkg string, flags []string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// callRow is one flow's measured calls beside the table's.
type callRow struct {
	Flow string
	Got  perf.Calls
	Want perf.FlowCalls
}

func (b *bench) remoteCalls() ([]callRow, error) {
	var c perf.Counter
	hs := b.world.Handlers(c.Instrument(b.cfg), nil)
	var rows []callRow
	for _, f := range b.world.Flows() {
		ev, err := f.Event(b.ctx)
		if err != nil {
			return nil, err
		}
		c.Take()
		out, err := hs[f.Function].Invoke(b.ctx, ev)
		got := c.Take()
		if err == nil {
			err = perf.CheckAnswer(f, out)
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, callRow{Flow: f.Name, Got: got, Want: perf.RemoteCalls[f.Name]})
	}
	return rows, nil
}

func (b *bench) fnConfig(bin binary) lambdarun.Config {
	env := b.stack.Env()
	if bin.Kind != "floor" {
		env = append(env, b.world.Env(bin.Name)...)
	}
	return lambdarun.Config{Name: bin.Name, Bootstrap: bin.Path, Env: env, MemoryMB: 128, Timeout: 60 * time.Second}
}

// coldRow is one binary's cold starts.
type coldRow struct {
	Bin         binary
	Init, First []time.Duration // per start
}

func (b *bench) coldStarts(bins []binary, n int) ([]coldRow, error) {
	rows := make([]coldRow, len(bins))
	for i := range bins {
		rows[i].Bin = bins[i]
	}
	// Interleaved, one start of each binary per round, so that drift in the machine's
	// load spreads over all of them alike.
	for range n {
		for i, bin := range bins {
			ev := []byte(`{}`)
			if bin.Flow != "" {
				var err error
				if ev, err = b.world.Flow(bin.Flow).Event(b.ctx); err != nil {
					return nil, err
				}
			}
			fn, err := lambdarun.Start(b.fnConfig(bin))
			if err != nil {
				return nil, err
			}
			init, _, err := fn.Init(b.ctx)
			if err != nil {
				fn.Close()
				return nil, err
			}
			t0 := time.Now()
			out, err := fn.Invoke(b.ctx, ev)
			first := time.Since(t0)
			fn.Close()
			if err == nil && bin.Flow != "" {
				err = perf.CheckAnswer(b.world.Flow(bin.Flow), out)
			}
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", bin.Name, bin.Kind, err)
			}
			rows[i].Init = append(rows[i].Init, init)
			rows[i].First = append(rows[i].First, first)
		}
	}
	return rows, nil
}

// warmRow is one flow at one concurrency.
type warmRow struct {
	Flow            string
	Callers         int
	Lat, Floor      []time.Duration
	PeakRSSKB       int // the largest peak RSS of the function's processes
	Requests        int
	Wall, FloorWall time.Duration
}

// warmFlows are measured under load; the reset is a console operation, measured by
// its scaling instead.
var warmFlows = []string{"send-key: send", "send-key: claim", "send-key: request", "reveal-key: reveal", "activation: sign-up confirmed"}

func (b *bench) warm(bins []binary, conc []int, perCaller int) ([]warmRow, error) {
	fnBin := map[string]binary{}
	for _, bin := range bins {
		if bin.Kind == "function" {
			fnBin[bin.Name] = bin
		}
	}
	var rows []warmRow
	for _, name := range warmFlows {
		flow := b.world.Flow(name)
		for _, c := range conc {
			row, err := b.warmOne(fnBin[flow.Function], flow, c, perCaller)
			if err != nil {
				return nil, fmt.Errorf("%s at %d: %w", name, c, err)
			}
			log.Printf("  %-30s %2d callers: p50 %v (floor %v)", name, c, pct(row.Lat, 50), pct(row.Floor, 50))
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// warmOne starts one function instance per caller (as Lambda scales out), warms
// each, then has every caller send perCaller requests back to back; then the same
// callers make the flow's bare emulator round trips (perf.RemoteCalls), as many times.
func (b *bench) warmOne(bin binary, flow perf.Flow, callers, perCaller int) (warmRow, error) {
	row := warmRow{Flow: flow.Name, Callers: callers, Requests: callers * perCaller}
	fns := make([]*lambdarun.Function, callers)
	pids := make([]int, callers)
	defer func() {
		for _, f := range fns {
			if f != nil {
				f.Close()
			}
		}
	}()
	events := make([][][]byte, callers)
	for i := range fns {
		f, err := lambdarun.Start(b.fnConfig(bin))
		if err != nil {
			return row, err
		}
		fns[i] = f
		if _, pids[i], err = f.Init(b.ctx); err != nil {
			return row, err
		}
		for range perCaller + 1 {
			ev, err := flow.Event(b.ctx)
			if err != nil {
				return row, err
			}
			events[i] = append(events[i], ev)
		}
		if _, err := f.Invoke(b.ctx, events[i][0]); err != nil { // warm-up
			return row, err
		}
	}
	lat, wall, err := together(callers, perCaller, func(i, j int) error {
		out, err := fns[i].Invoke(b.ctx, events[i][j+1])
		if err == nil {
			err = perf.CheckAnswer(flow, out)
		}
		return err
	})
	if err != nil {
		return row, err
	}
	row.Lat, row.Wall = lat, wall
	for _, pid := range pids {
		row.PeakRSSKB = max(row.PeakRSSKB, peakRSS(pid))
	}
	p := newProber(b, flow.Name)
	if err := p.prepare(callers); err != nil {
		return row, err
	}
	if _, _, err := together(callers, 1, func(i, _ int) error { return p.roundTrips(i) }); err != nil { // warm-up
		return row, err
	}
	row.Floor, row.FloorWall, err = together(callers, perCaller, func(i, j int) error { return p.roundTrips(i) })
	return row, err
}

// together runs perCaller sequential calls on each of callers goroutines, all at
// once, and returns every call's latency and the wall time.
func together(callers, perCaller int, call func(caller, j int) error) ([]time.Duration, time.Duration, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
	)
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			for j := range perCaller {
				t0 := time.Now()
				err := call(i, j)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		return nil, 0, errs[0]
	}
	return lat, time.Since(t0), nil
}

// peakRSS is a process's high-water resident set (VmHWM), in KiB.
func peakRSS(pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// prober makes a flow's calls (perf.RemoteCalls) bare: the same operations on the
// same emulators, with nothing in between, from clients like the functions'.
type prober struct {
	b    *bench
	ops  []string
	db   *dynamodb.Client
	kms  *kms.Client
	ses  *sesv2.Client
	blob []byte
}

func newProber(b *bench, flow string) *prober {
	if b.db == nil {
		b.db, b.kms, b.ses = dynamodb.NewFromConfig(b.cfg), kms.NewFromConfig(b.cfg), sesv2.NewFromConfig(b.cfg)
	}
	p := &prober{b: b, db: b.db, kms: b.kms, ses: b.ses}
	calls := perf.RemoteCalls[flow].Calls
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for k := range calls {
			if !yield(k) {
				return
			}
		}
	}) {
		for range calls[op] {
			p.ops = append(p.ops, op)
		}
	}
	return p
}

func (p *prober) prepare(int) error {
	out, err := p.kms.Encrypt(p.b.ctx, &kms.EncryptInput{KeyId: &p.b.world.KMSKeyID, Plaintext: make([]byte, 32),
		EncryptionContext: map[string]string{"tenantId": "probe", "keyVersion": "1", "purpose": "org-key"}})
	if err != nil {
		return err
	}
	p.blob = out.CiphertextBlob
	return nil
}

func (p *prober) roundTrips(caller int) error {
	ctx, w := p.b.ctx, p.b.world
	table := &w.Table
	pk := func(k string) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: k}, "sk": &ddbtypes.AttributeValueMemberS{Value: "PROBE"}}
	}
	mine := fmt.Sprintf("PROBE#%d#%d", caller, time.Now().UnixNano())
	for _, op := range p.ops {
		var err error
		switch op {
		case "DynamoDB.GetItem":
			_, err = p.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]ddbtypes.AttributeValue{
				"pk": &ddbtypes.AttributeValueMemberS{Value: "TENANT#" + w.Org.ID}, "sk": &ddbtypes.AttributeValueMemberS{Value: "ORG"}}, ConsistentRead: aws.Bool(true)})
		case "DynamoDB.BatchGetItem": // a user and the organization, as httpapi.ResolveCaller reads them
			_, err = p.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{w.Table: {
				Keys: []map[string]ddbtypes.AttributeValue{
					{"pk": &ddbtypes.AttributeValueMemberS{Value: "TENANT#" + w.Org.ID}, "sk": &ddbtypes.AttributeValueMemberS{Value: "ORG"}},
					{"pk": &ddbtypes.AttributeValueMemberS{Value: "TENANT#" + w.Org.ID}, "sk": &ddbtypes.AttributeValueMemberS{Value: "USER#probe"}},
				}, ConsistentRead: aws.Bool(true)}}})
		case "DynamoDB.Query":
			_, err = p.db.Query(ctx, &dynamodb.QueryInput{TableName: table, KeyConditionExpression: aws.String("pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: "TENANT#" + w.Org.ID}}})
		case "DynamoDB.PutItem":
			_, err = p.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: pk(mine)})
		case "DynamoDB.UpdateItem":
			_, err = p.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: pk(fmt.Sprintf("PROBE#%d", caller)),
				UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
		case "DynamoDB.TransactWriteItems":
			_, err = p.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Put: &ddbtypes.Put{TableName: table, Item: pk(mine + "#a")}}, {Put: &ddbtypes.Put{TableName: table, Item: pk(mine + "#b")}},
				{Put: &ddbtypes.Put{TableName: table, Item: pk(mine + "#c")}}}})
		case "KMS.Decrypt":
			_, err = p.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: &w.KMSKeyID, CiphertextBlob: p.blob,
				EncryptionContext: map[string]string{"tenantId": "probe", "keyVersion": "1", "purpose": "org-key"}})
		case "KMS.Encrypt":
			_, err = p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: &w.KMSKeyID, Plaintext: make([]byte, 32),
				EncryptionContext: map[string]string{"tenantId": "probe", "keyVersion": "1", "purpose": "org-key"}})
		case "SESv2.SendEmail":
			_, err = p.ses.SendEmail(ctx, &sesv2.SendEmailInput{FromEmailAddress: aws.String(perf.MailFrom),
				Destination: &sestypes.Destination{ToAddresses: []string{"probe@example.test"}},
				Content: &sestypes.EmailContent{Simple: &sestypes.Message{Subject: &sestypes.Content{Data: aws.String("probe")},
					Body: &sestypes.Body{Text: &sestypes.Content{Data: aws.String("probe")}}}}})
		default:
			err = fmt.Errorf("no probe for %s", op)
		}
		if err != nil {
			return fmt.Errorf("probe %s: %w", op, err)
		}
	}
	return nil
}

func minMemory(root string) (int, error) {
	t, err := samtemplate.Load(root + "/template.yaml")
	if err != nil {
		return 0, err
	}
	fns, err := t.Functions()
	if err != nil {
		return 0, err
	}
	m := 0
	for _, f := range fns {
		if f.MemorySize > 0 && (m == 0 || f.MemorySize < m) {
			m = f.MemorySize
		}
	}
	if m == 0 {
		m = 128 // SAM's default
	}
	return m, nil
}

func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			kb, _ := strconv.Atoi(f[1])
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other work on the machine skews absolute figures; the ratios are within one run.
		load = ", load average at start " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s/%s, %d vCPU (%s)%s, %s%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, mem, runtime.Version(), load)
}
