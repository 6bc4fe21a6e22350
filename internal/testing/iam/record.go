// Package iam proves the functions' IAM policies against the calls they make: a
// recorder notes every AWS call a function makes in the test suites with what IAM
// evaluates for it (action, resource, condition keys), and an evaluator checks each
// recorded request against that function's role in template.yaml after the SAM
// transform, with IAM's rules. The tests fail on a call IAM would deny and on a
// granted action that no recorded call uses.
//
// Recording. testenv instruments its aws.Config with Instrument when
// ORGKEY_IAM_RECORD names a directory; every test binary then writes the requests
// its functions made to <dir>/<package>.jsonl when it ends. A call is attributed
// to the function whose flow package (internal/activation, internal/sendkey,
// internal/revealkey, internal/reset) has a non-test frame on the calling
// goroutine's stack, or on the stacks of the goroutines that created it, which the
// Go runtime keeps with GODEBUG=tracebackancestors (the store fans some reads and
// deletions out to goroutines). Calls made by tests and fixtures have no such
// frame and are not recorded.
package iam

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/smithy-go/middleware"
)

// RecordDirEnv names the directory test binaries write their recorded requests to.
const RecordDirEnv = "ORGKEY_IAM_RECORD"

// flowFunctions maps a flow package to the function (functions/<name>) that runs it.
var flowFunctions = map[string]string{
	"github.com/mspvault/orgkey/internal/activation": "activation-email",
	"github.com/mspvault/orgkey/internal/sendkey":    "send-key",
	"github.com/mspvault/orgkey/internal/revealkey":  "reveal-key",
	"github.com/mspvault/orgkey/internal/reset":      "support-reset",
}

// Kinds of resources a request names.
const (
	KindTable     = "table"    // Name: the table; Index: the index, if any
	KindKey       = "key"      // Name: the KMS key id, ARN or alias the call gave
	KindIdentity  = "identity" // Name: the SES identity (the From address's domain)
	KindConfigSet = "configuration-set"
	KindUserPool  = "userpool" // Name: the user pool id
	KindAny       = "*"        // a call this recorder does not model: IAM needs "*"
)

// Request is one authorization IAM makes for a call: a TransactWriteItems is one
// request per item (PutItem, UpdateItem, ConditionCheckItem, DeleteItem on the
// item's table), a BatchGetItem one per table.
type Request struct {
	Function  string              `json:"function"`  // functions/<name>
	Operation string              `json:"operation"` // the SDK call, e.g. "DynamoDB.TransactWriteItems"
	Action    string              `json:"action"`    // e.g. "dynamodb:ConditionCheckItem"
	Kind      string              `json:"kind"`
	Name      string              `json:"name,omitempty"`
	Index     string              `json:"index,omitempty"`
	Context   map[string][]string `json:"context,omitempty"` // condition keys, e.g. kms:EncryptionContext:purpose
	Package   string              `json:"package,omitempty"` // the test package that made it
}

// Key identifies requests that IAM evaluates alike (for de-duplication).
func (r Request) Key() string {
	keys := slices.Sorted(maps.Keys(r.Context))
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s", r.Function, r.Operation, r.Action, r.Kind, r.Name, r.Index)
	for _, k := range keys {
		fmt.Fprintf(&b, "|%s=%s", k, strings.Join(r.Context[k], ","))
	}
	return b.String()
}

// Recorder keeps the distinct requests made through the configs it instrumented.
type Recorder struct {
	mu   sync.Mutex
	seen map[string]Request
}

// Instrument returns a copy of cfg whose clients record every call a function's
// flow makes. The middleware sits in the Initialize step: a retried call is one
// request.
func (r *Recorder) Instrument(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("OrgkeyIAMRecorder",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if fn := CallingFunction(); fn != "" {
					service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
					if service == "" || op == "" {
						service, op = serviceOperationOf(in.Parameters)
					}
					r.add(Requests(fn, service, op, in.Parameters))
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	return cfg
}

func (r *Recorder) add(reqs []Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]Request{}
	}
	for _, q := range reqs {
		r.seen[q.Key()] = q
	}
}

// Requests returns the distinct requests recorded so far, in a stable order.
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := slices.Sorted(maps.Keys(r.seen))
	out := make([]Request, len(keys))
	for i, k := range keys {
		out[i] = r.seen[k]
	}
	return out
}

// WriteFile writes the requests, one JSON object a line, to dir/<name>.jsonl,
// labelled with the package pkg.
func (r *Recorder) WriteFile(dir, pkg string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := strings.NewReplacer("/", "_", ".", "_").Replace(strings.TrimPrefix(pkg, "github.com/mspvault/orgkey/"))
	f, err := os.Create(filepath.Join(dir, name+".jsonl"))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, q := range r.Requests() {
		q.Package = pkg
		if err := enc.Encode(q); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadDir reads every recording under dir.
func ReadDir(dir string) ([]Request, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Request
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(f)
		for dec.More() {
			var q Request
			if err := dec.Decode(&q); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out = append(out, q)
		}
		f.Close()
	}
	return out, nil
}

// CallingFunction returns the function whose flow code is on the current
// goroutine's stack (or its creators', with GODEBUG=tracebackancestors), or "" for
// a call made by a test or a fixture. The innermost non-test frame of a flow
// package decides; a flow package's _test.go frames are skipped.
func CallingFunction() string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, false)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	lines := strings.Split(string(buf), "\n")
	for i := 0; i+1 < len(lines); i++ {
		line, next := lines[i], lines[i+1]
		if !strings.HasPrefix(next, "\t") || strings.HasPrefix(line, "\t") {
			continue
		}
		name := strings.TrimPrefix(line, "created by ")
		if j := strings.Index(name, " in goroutine"); j >= 0 {
			name = name[:j]
		} else if j := strings.LastIndex(name, "("); j > 0 {
			name = name[:j]
		}
		if fn := flowFunctions[packageOf(name)]; fn != "" && !strings.Contains(next, "_test.go:") {
			return fn
		}
	}
	return ""
}

// packageOf is the import path of a traceback's function name:
// "example.com/a/b.(*T).M.func1" is in "example.com/a/b".
func packageOf(name string) string {
	slash := strings.LastIndex(name, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}

// Requests turns one SDK call into the requests IAM authorizes for it.
func Requests(function, service, operation string, params any) []Request {
	op := service + "." + operation
	one := func(action, kind, name, index string, c map[string][]string) Request {
		return Request{Function: function, Operation: op, Action: action, Kind: kind, Name: name, Index: index, Context: c}
	}
	switch in := params.(type) {
	// DynamoDB: the table, or the index for an index query.
	case *dynamodb.GetItemInput:
		return []Request{one("dynamodb:GetItem", KindTable, aws.ToString(in.TableName), "", nil)}
	case *dynamodb.PutItemInput:
		return []Request{one("dynamodb:PutItem", KindTable, aws.ToString(in.TableName), "", nil)}
	case *dynamodb.UpdateItemInput:
		return []Request{one("dynamodb:UpdateItem", KindTable, aws.ToString(in.TableName), "", nil)}
	case *dynamodb.DeleteItemInput:
		return []Request{one("dynamodb:DeleteItem", KindTable, aws.ToString(in.TableName), "", nil)}
	case *dynamodb.QueryInput:
		return []Request{one("dynamodb:Query", KindTable, aws.ToString(in.TableName), aws.ToString(in.IndexName), nil)}
	case *dynamodb.ScanInput:
		return []Request{one("dynamodb:Scan", KindTable, aws.ToString(in.TableName), aws.ToString(in.IndexName), nil)}
	case *dynamodb.BatchGetItemInput:
		var out []Request
		for _, t := range slices.Sorted(maps.Keys(in.RequestItems)) {
			out = append(out, one("dynamodb:BatchGetItem", KindTable, t, "", nil))
		}
		return out
	case *dynamodb.BatchWriteItemInput:
		var out []Request
		for _, t := range slices.Sorted(maps.Keys(in.RequestItems)) {
			out = append(out, one("dynamodb:BatchWriteItem", KindTable, t, "", nil))
		}
		return out
	case *dynamodb.TransactWriteItemsInput:
		// IAM authorizes each item's own action on its table.
		var out []Request
		for _, it := range in.TransactItems {
			switch {
			case it.Put != nil:
				out = append(out, one("dynamodb:PutItem", KindTable, aws.ToString(it.Put.TableName), "", nil))
			case it.Update != nil:
				out = append(out, one("dynamodb:UpdateItem", KindTable, aws.ToString(it.Update.TableName), "", nil))
			case it.Delete != nil:
				out = append(out, one("dynamodb:DeleteItem", KindTable, aws.ToString(it.Delete.TableName), "", nil))
			case it.ConditionCheck != nil:
				out = append(out, one("dynamodb:ConditionCheckItem", KindTable, aws.ToString(it.ConditionCheck.TableName), "", nil))
			}
		}
		return out
	case *dynamodb.TransactGetItemsInput:
		var out []Request
		for _, it := range in.TransactItems {
			if it.Get != nil {
				out = append(out, one("dynamodb:GetItem", KindTable, aws.ToString(it.Get.TableName), "", nil))
			}
		}
		return out

	// KMS: the key, and the encryption context as condition keys.
	case *kms.EncryptInput:
		return []Request{one("kms:Encrypt", KindKey, aws.ToString(in.KeyId), "", kmsContext(in.EncryptionContext))}
	case *kms.DecryptInput:
		return []Request{one("kms:Decrypt", KindKey, aws.ToString(in.KeyId), "", kmsContext(in.EncryptionContext))}
	case *kms.GenerateDataKeyInput:
		return []Request{one("kms:GenerateDataKey", KindKey, aws.ToString(in.KeyId), "", kmsContext(in.EncryptionContext))}

	// SES v2: the sending identity (the From address's domain) and the From
	// address; the configuration set, when the call names one, is a resource too.
	case *sesv2.SendEmailInput:
		from := addressOf(aws.ToString(in.FromEmailAddress))
		c := map[string][]string{"ses:FromAddress": {from}}
		_, domain, _ := strings.Cut(from, "@")
		out := []Request{one("ses:SendEmail", KindIdentity, domain, "", c)}
		if in.ConfigurationSetName != nil {
			out = append(out, one("ses:SendEmail", KindConfigSet, *in.ConfigurationSetName, "", c))
		}
		return out
	}
	// Cognito's admin calls name the pool; anything else is unmodelled and needs "*".
	if pool := userPoolID(params); pool != "" {
		return []Request{one(iamPrefix(service)+":"+operation, KindUserPool, pool, "", nil)}
	}
	return []Request{one(iamPrefix(service)+":"+operation, KindAny, "", "", nil)}
}

func kmsContext(ec map[string]string) map[string][]string {
	c := map[string][]string{}
	for k, v := range ec {
		c["kms:EncryptionContext:"+k] = []string{v}
	}
	c["kms:EncryptionContextKeys"] = slices.Sorted(maps.Keys(ec))
	return c
}

// addressOf strips a display name: "Name <a@b>" is a@b.
func addressOf(s string) string {
	if i := strings.LastIndex(s, "<"); i >= 0 && strings.HasSuffix(s, ">") {
		return s[i+1 : len(s)-1]
	}
	return s
}

// serviceOperationOf names a call from its input's type, for a client whose
// service metadata is not yet in the context at this step (Cognito's is set later
// in its Initialize step than the recorder runs): *cognitoidentityprovider.
// AdminDeleteUserInput is "Cognito Identity Provider", "AdminDeleteUser".
func serviceOperationOf(params any) (service, op string) {
	t := reflect.TypeOf(params)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "", ""
	}
	op = strings.TrimSuffix(t.Name(), "Input")
	switch path.Base(t.PkgPath()) {
	case "cognitoidentityprovider":
		service = "Cognito Identity Provider"
	case "dynamodb":
		service = "DynamoDB"
	case "kms":
		service = "KMS"
	case "sesv2":
		service = "SESv2"
	}
	return service, op
}

func userPoolID(params any) string {
	b, err := json.Marshal(params)
	if err != nil {
		return ""
	}
	var v struct{ UserPoolId string }
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.UserPoolId
}

// iamPrefix is the IAM service prefix of an SDK service id.
func iamPrefix(serviceID string) string {
	switch serviceID {
	case "Cognito Identity Provider":
		return "cognito-idp"
	case "SESv2", "SES":
		return "ses"
	}
	return strings.ToLower(strings.ReplaceAll(serviceID, " ", ""))
}
