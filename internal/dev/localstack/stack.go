// Package localstack runs the whole service on this machine, without Docker
// or the SAM CLI: the emulators (DynamoDB Local, aws-ses-v2-local, moto's
// KMS, cognito-local), every function's built bootstrap behind a local Lambda
// Runtime API (one warm process each, restarted when it crashes), the HTTP
// API with its JWT authorizer (as `sam local start-api`), and the Lambda
// Invoke API (as `sam local start-lambda`), which cognito-local's triggers
// and `aws lambda invoke` call.
//
// Everything about the functions comes from template.yaml (environment,
// routes, which routes need the authorizer, the user pool, its app client
// and its triggers); nothing is configured twice. The functions reach the
// emulators only through the SDK's AWS_ENDPOINT_URL_<SERVICE> variables.
//
// Client (client.go) drives a running stack from outside, as a user would;
// the walkthrough and the end-to-end tests use it.
package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/dev/lambdarun"
	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// Options configure Start.
type Options struct {
	// Root is the repository root (template.yaml, bin/, node_modules).
	Root string
	// BinDir holds the functions' bootstraps, <BinDir>/<function>/bootstrap, as
	// `make build BIN=<BinDir>` writes them. Empty: Root/bin (`make build`).
	BinDir string
	// APIPort and LambdaPort: 0 picks a free port (make run uses 3000 and
	// 3001, as sam local does).
	APIPort, LambdaPort int
	// CognitoPort and Emulators' ports: 0 picks free ones.
	CognitoPort int
	Emulators   emulators.Options
	// Table is the table's name, also the KMS alias and the pool's name.
	Table string
	// LogDir receives every emulator's log and functions.log. Empty: a
	// temporary directory, removed by Stop.
	LogDir string
	// FunctionLogs receives the functions' JSON log lines; nil: functions.log
	// in LogDir.
	FunctionLogs io.Writer
	// Params are values for template parameters without a default (the
	// deploy takes them from samconfig.toml). Defaults are filled in by
	// Start: the mail sender, and the web app and claim links on the API's
	// own URL.
	Params map[string]string
	// ScheduleEvery, when set, runs every Schedule event of the template at this
	// interval instead of its rate (a test's faster clock). 0: each at its rate,
	// as EventBridge does.
	ScheduleEvery time.Duration
}

// Endpoints is where everything of a running stack is; the command writes
// it as JSON (-state-file) for tools and tests.
type Endpoints struct {
	API        string `json:"api"`
	Lambda     string `json:"lambda"`
	Cognito    string `json:"cognito"`
	DynamoDB   string `json:"dynamodb"`
	SES        string `json:"ses"`
	SESViewer  string `json:"sesViewer"`
	KMS        string `json:"kms"`
	Region     string `json:"region"`
	Table      string `json:"table"`
	KMSKeyID   string `json:"kmsKeyId"`
	KMSKeyArn  string `json:"kmsKeyArn"`
	UserPoolID string `json:"userPoolId"`
	ClientID   string `json:"clientId"`
	Issuer     string `json:"issuer"`
	JWKS       string `json:"jwks"`
	LogDir     string `json:"logDir"`
	CognitoLog string `json:"cognitoLog"`
	// CognitoDir holds cognito-local's .cognito (configuration, database).
	CognitoDir string `json:"cognitoDir"`
	// Functions are the logical ids; Routes the route keys, with the
	// authorizer's name or NONE.
	Functions []string          `json:"functions"`
	Routes    map[string]string `json:"routes"`
	// Schedules are the Schedule events the stack runs, with their intervals.
	Schedules []string `json:"schedules"`
	// Pid is the stack process's.
	Pid int `json:"pid"`
}

// Stack is a running local stack.
type Stack struct {
	Endpoints
	// FunctionEnv is each function's environment from the template.
	FunctionEnv map[string][]string

	emu       *emulators.Stack
	cognito   *cognitoLocal
	functions map[string]*lambdarun.Function
	servers   []*http.Server
	logDir    string
	removeDir bool
	fnLog     *os.File
	stopOnce  sync.Once
	stopErr   error
	// The Schedule events' runner (schedule.go), stopped first by Stop.
	stopSchedules context.CancelFunc
	schedules     sync.WaitGroup
}

// Invoke runs one invocation of a function (Invoker).
func (s *Stack) Invoke(ctx context.Context, name string, payload []byte) ([]byte, error) {
	f, ok := s.functions[name]
	if !ok {
		return nil, fmt.Errorf("no function %s", name)
	}
	return f.Invoke(ctx, payload)
}

// Start brings the whole stack up; on error, whatever had started is
// stopped again. It sets this process's AWS environment to the stack's
// (emulators.Stack.Setenv): the process owns the stack.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("localstack.Start: %w", err)
		}
	}()
	if opts.Root == "" {
		if opts.Root, err = samtemplate.FindRoot(); err != nil {
			return nil, err
		}
	}
	if opts.Table == "" {
		opts.Table = "orgkey-local"
	}
	tpl, err := samtemplate.Load(filepath.Join(opts.Root, "template.yaml"))
	if err != nil {
		return nil, err
	}
	fns, err := tpl.Functions()
	if err != nil {
		return nil, err
	}
	build := "make build"
	if opts.BinDir == "" {
		opts.BinDir = filepath.Join(opts.Root, "bin")
	} else {
		build = "make build BIN=" + opts.BinDir
	}
	var missing []error
	for _, fn := range fns {
		if _, err := os.Stat(bootstrapPath(opts.BinDir, fn)); err != nil {
			missing = append(missing, fmt.Errorf("%s not found: run `%s` first", bootstrapPath(opts.BinDir, fn), build))
		}
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}
	trig, err := triggers(tpl)
	if err != nil {
		return nil, err
	}

	s := &Stack{FunctionEnv: map[string][]string{}, functions: map[string]*lambdarun.Function{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	s.Pid = os.Getpid()
	s.Region = Region
	s.Table = opts.Table
	if s.logDir = opts.LogDir; s.logDir == "" {
		if s.logDir, err = os.MkdirTemp("", "orgkey-local-"); err != nil {
			return nil, err
		}
		s.removeDir = true
	} else if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return nil, err
	}
	s.LogDir = s.logDir
	fnLogs := opts.FunctionLogs
	if fnLogs == nil {
		if s.fnLog, err = os.Create(filepath.Join(s.logDir, "functions.log")); err != nil {
			return nil, err
		}
		fnLogs = s.fnLog
	}
	stackLog := slog.New(slog.NewJSONHandler(fnLogs, nil)).With("component", "orgkey-local")

	// Bind the API ports first: a port in use fails at once, and cognito-local
	// needs the Lambda endpoint's address in its configuration.
	apiL, err := listen(opts.APIPort, "HTTP API")
	if err != nil {
		return nil, err
	}
	lambdaL, err := listen(opts.LambdaPort, "Lambda endpoint")
	if err != nil {
		apiL.Close()
		return nil, err
	}
	s.API = "http://" + apiL.Addr().String()
	s.Lambda = "http://" + lambdaL.Addr().String()
	closeListeners := func() { apiL.Close(); lambdaL.Close() }

	emuOpts := opts.Emulators
	emuOpts.Root = opts.Root
	emuOpts.LogDir = s.logDir
	if s.emu, err = emulators.Start(ctx, emuOpts); err != nil {
		closeListeners()
		return nil, err
	}
	s.DynamoDB, s.SES, s.KMS, s.SESViewer = s.emu.DynamoDB, s.emu.SES, s.emu.KMS, s.emu.SESViewerURL()
	if err := s.emu.Setenv(); err != nil {
		closeListeners()
		return nil, err
	}

	cognitoPort := opts.CognitoPort
	if cognitoPort == 0 {
		if cognitoPort, err = freePort(); err != nil {
			closeListeners()
			return nil, err
		}
	}
	s.CognitoLog = filepath.Join(s.logDir, "cognito.log")
	s.CognitoDir = s.logDir
	s.cognito, err = startCognito(ctx, opts.Root, s.logDir, cognitoPort, s.Lambda, trig, s.CognitoLog)
	if err != nil {
		closeListeners()
		return nil, err
	}
	s.Cognito = s.cognito.URL
	if err := os.Setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", s.Cognito); err != nil {
		closeListeners()
		return nil, err
	}

	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		closeListeners()
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	if err := s.provision(ctx, awsCfg, tpl); err != nil {
		closeListeners()
		return nil, err
	}

	params := map[string]string{
		"MailFromAddress": "no-reply@orgkey.local",
		"SesIdentityName": "orgkey.local",
		"AppBaseUrl":      s.API,
		// The claim route is served by this API; the cookie lands on it.
		"ClaimBaseUrl":            s.API,
		"TableDeletionProtection": "false",
		// A confirmed reset starts at the schedule's next run: the walkthrough shows
		// it end to end.
		"ResetCoolOffHours": "0",
	}
	for k, v := range opts.Params {
		params[k] = v
	}
	res := resolver{tpl: tpl, params: params, resources: map[string]resource{
		tableID:      {Ref: s.Table, Arn: "arn:aws:dynamodb:" + Region + ":" + AccountID + ":table/" + s.Table},
		keyID:        {Ref: s.KMSKeyID, Arn: s.KMSKeyArn},
		userPoolID:   {Ref: s.UserPoolID, Arn: "arn:aws:cognito-idp:" + Region + ":" + AccountID + ":userpool/" + s.UserPoolID},
		poolClientID: {Ref: s.ClientID},
	}}

	// The functions, one warm process each.
	for _, fn := range fns {
		env, err := res.functionEnv(fn)
		if err != nil {
			closeListeners()
			return nil, err
		}
		s.FunctionEnv[fn.LogicalID] = env
		f, err := lambdarun.Start(lambdarun.Config{
			Name:      fn.LogicalID,
			Bootstrap: bootstrapPath(opts.BinDir, fn),
			Env:       append(s.functionBaseEnv(), env...),
			MemoryMB:  fn.MemorySize,
			Timeout:   time.Duration(fn.Timeout) * time.Second,
			Region:    Region,
			Logs:      fnLogs,
		})
		if err != nil {
			closeListeners()
			return nil, err
		}
		s.functions[fn.LogicalID] = f
		s.Functions = append(s.Functions, fn.LogicalID)
	}

	// The HTTP API: every HttpApi event of every function.
	gw := &Gateway{Invoker: s, Log: stackLog, APIID: "local"}
	s.Routes = map[string]string{}
	auths := map[string]*Authorizer{}
	for _, fn := range fns {
		for _, ev := range fn.Events {
			if ev.Route == nil {
				continue
			}
			rt := Route{Method: ev.Route.Method, Path: ev.Route.Path, Function: fn.LogicalID, Scopes: ev.Route.Scopes}
			s.Routes[rt.Key()] = "NONE"
			if a := ev.Route.Auth; a != nil {
				if auths[a.Name] == nil {
					issuer, aud, err := res.jwtAuthorizer(a, s.Cognito)
					if err != nil {
						closeListeners()
						return nil, err
					}
					auths[a.Name] = &Authorizer{Issuer: issuer, Audience: aud, JWKSURL: issuer + "/.well-known/jwks.json"}
				}
				rt.Auth = auths[a.Name]
				s.Routes[rt.Key()] = a.Name
			}
			gw.Routes = append(gw.Routes, rt)
		}
	}
	sort.Slice(gw.Routes, func(i, j int) bool { return gw.Routes[i].Key() < gw.Routes[j].Key() })
	s.Issuer = s.Cognito + "/" + s.UserPoolID
	s.JWKS = s.Issuer + "/.well-known/jwks.json"

	names := map[string]bool{}
	for _, n := range s.Functions {
		names[n] = true
	}
	invoke := &InvokeAPI{Functions: names, Invoker: s, Log: stackLog}
	scheds, err := schedules(fns, opts.ScheduleEvery)
	if err != nil {
		closeListeners()
		return nil, err
	}
	s.serve(apiL, gw)
	s.serve(lambdaL, invoke.Handler())
	var schedCtx context.Context
	schedCtx, s.stopSchedules = context.WithCancel(context.Background())
	runSchedules(schedCtx, &s.schedules, s, scheds, stackLog)
	for _, sc := range scheds {
		s.Schedules = append(s.Schedules, fmt.Sprintf("%s %s every %s", sc.Function, sc.Event, sc.Every))
	}
	return s, nil
}

// provision creates the table and the KMS key (emulators), the user pool and
// its app client (cognito-local), all from the template.
func (s *Stack) provision(ctx context.Context, cfg aws.Config, tpl *samtemplate.Template) error {
	id, err := s.emu.Provision(ctx, cfg, s.Table)
	if err != nil {
		return err
	}
	key, err := kms.NewFromConfig(cfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("describe key %s: %w", id, err)
	}
	s.KMSKeyID, s.KMSKeyArn = id, aws.ToString(key.KeyMetadata.Arn)

	idp := cip.NewFromConfig(cfg, func(o *cip.Options) { o.BaseEndpoint = aws.String(s.Cognito) })
	poolIn, err := userPoolInput(tpl, s.Table+"-users")
	if err != nil {
		return err
	}
	pool, err := idp.CreateUserPool(ctx, poolIn)
	if err != nil {
		return fmt.Errorf("create user pool: %w", err)
	}
	s.UserPoolID = aws.ToString(pool.UserPool.Id)
	clientIn, err := userPoolClientInput(tpl, s.UserPoolID, s.Table+"-web")
	if err != nil {
		return err
	}
	client, err := idp.CreateUserPoolClient(ctx, clientIn)
	if err != nil {
		return fmt.Errorf("create user pool client: %w", err)
	}
	s.ClientID = aws.ToString(client.UserPoolClient.ClientId)
	return nil
}

// functionBaseEnv is what every function gets besides its template
// variables: the emulators' endpoints (cognito-local's too: the claim page
// signs users in there, as it does against Cognito's regional endpoint on
// AWS, and the support reset deletes accounts there), region and dummy credentials.
func (s *Stack) functionBaseEnv() []string {
	return append(s.emu.Env(), "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="+s.Cognito)
}

// CLIEnv is the environment under which the AWS CLI reaches the stack.
func (s *Stack) CLIEnv() []string {
	return append(s.emu.Env(), "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="+s.Cognito, "AWS_ENDPOINT_URL_LAMBDA="+s.Lambda)
}

func (s *Stack) serve(l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go srv.Serve(l)
}

// WriteState writes the endpoints as JSON, atomically.
func (s *Stack) WriteState(path string) error {
	b, err := json.MarshalIndent(s.Endpoints, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Stop stops everything the stack started, waits for every process, and
// removes its temporary directory. It is safe to call more than once.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		if s.stopSchedules != nil {
			s.stopSchedules()
			s.schedules.Wait()
		}
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range s.servers {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, f := range s.functions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f.Close(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if s.cognito != nil {
			errs = append(errs, s.cognito.stop())
		}
		if s.emu != nil {
			errs = append(errs, s.emu.Stop())
		}
		if s.fnLog != nil {
			s.fnLog.Close()
		}
		s.stopErr = errors.Join(errs...)
		if s.stopErr == nil && s.removeDir {
			s.stopErr = os.RemoveAll(s.logDir)
		}
	})
	return s.stopErr
}

func bootstrapPath(binDir string, fn samtemplate.Function) string {
	return filepath.Join(binDir, filepath.Base(fn.SourceDir()), "bootstrap")
}

func listen(port int, what string) (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("%s on 127.0.0.1:%d: %w (another orgkey-local running? choose another port with its flag)", what, port, err)
	}
	return l, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
