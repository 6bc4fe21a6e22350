package faultinject_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	fi "github.com/mspvault/orgkey/internal/testing/faultinject"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// rig is a DynamoDB and an SES client of the emulators behind one injector.
type rig struct {
	env   *testenv.Env
	in    *fi.Injector
	db    *dynamodb.Client // one attempt per call: each call is exactly one injector call
	retry *dynamodb.Client // the SDK's standard retryer, as the flows have it
	ses   *sesv2.Client
}

func newRig(t *testing.T) *rig {
	env := testenv.Get(t)
	in := &fi.Injector{}
	cfg := in.Apply(env.AWSConfig)
	return &rig{
		env: env, in: in,
		db:    dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 }),
		retry: dynamodb.NewFromConfig(cfg),
		ses:   sesv2.NewFromConfig(cfg, func(o *sesv2.Options) { o.RetryMaxAttempts = 1 }),
	}
}

func (r *rig) put(ctx context.Context, db *dynamodb.Client, pk string) error {
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &r.env.TableName,
		Item: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: pk},
			"sk": &ddbtypes.AttributeValueMemberS{Value: "faultinject"},
		},
	})
	return err
}

// stored reads the item back without the injector.
func (r *rig) stored(t *testing.T, pk string) bool {
	t.Helper()
	out, err := dynamodb.NewFromConfig(r.env.AWSConfig).GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: &r.env.TableName, ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: pk},
			"sk": &ddbtypes.AttributeValueMemberS{Value: "faultinject"},
		},
	})
	if err != nil {
		t.Fatalf("GetItem %s: %v", pk, err)
	}
	return out.Item != nil
}

func TestRuleFaultsOnlyItsCallsAndWindow(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	// PutItem calls 2 and 3 throttled; GetItem and other services untouched.
	r.in.Add(fi.Rule{Service: fi.DynamoDB, Operation: "PutItem", Kind: fi.Throttle, From: 2, To: 3})
	base := testenv.UniqueName("rule")
	var results []error
	for i := range 4 {
		results = append(results, r.put(ctx, r.db, base+"-"+string(rune('a'+i))))
		if _, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &r.env.TableName, Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: base}, "sk": &ddbtypes.AttributeValueMemberS{Value: "faultinject"},
		}}); err != nil {
			t.Errorf("GetItem %d was faulted: %v", i, err)
		}
	}
	for i, err := range results {
		var thr *ddbtypes.ProvisionedThroughputExceededException
		faulted := i == 1 || i == 2
		if got := errors.As(err, &thr); got != faulted {
			t.Errorf("PutItem %d: %v, want throttled %v", i+1, err, faulted)
		}
		if got := r.stored(t, base+"-"+string(rune('a'+i))); got == faulted {
			t.Errorf("PutItem %d: stored %v, want %v (a refused call writes nothing)", i+1, got, !faulted)
		}
	}
	calls := r.in.Calls()
	if len(calls) != 8 {
		t.Fatalf("%d calls seen, want 8 (4 PutItem, 4 GetItem): %v", len(calls), calls)
	}
	if n := r.in.Injected(); n != 2 {
		t.Errorf("%d calls injected, want 2: %v", n, calls)
	}
	for _, c := range calls {
		if c.Operation == "GetItem" && c.Fault != "" {
			t.Errorf("GetItem faulted: %+v", c)
		}
	}
	r.in.Clear()
	if err := r.put(ctx, r.db, base+"-after-clear"); err != nil || len(r.in.Calls()) != 1 {
		t.Errorf("after Clear: %v, %d calls, want a clean call and a fresh count", err, len(r.in.Calls()))
	}
}

func TestRetryerRetriesInjectedThrottle(t *testing.T) {
	r := newRig(t)
	r.in.Add(fi.Rule{Service: fi.DynamoDB, Operation: "PutItem", Kind: fi.Throttle, From: 1, To: 2})
	pk := testenv.UniqueName("retry")
	if err := r.put(t.Context(), r.retry, pk); err != nil {
		t.Fatalf("two throttles within the standard retryer's three attempts: %v", err)
	}
	calls := r.in.Calls()
	if len(calls) != 3 || calls[0].Fault != fi.Throttle || calls[1].Fault != fi.Throttle || calls[2].Fault != "" {
		t.Errorf("calls %+v, want two throttled attempts then one through", calls)
	}
	if !r.stored(t, pk) {
		t.Error("the third attempt did not write")
	}
}

func TestConflictIsTheTypedConditionalError(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	r.in.Add(fi.Rule{Service: fi.DynamoDB, Kind: fi.Conflict, From: 1, To: -1})
	pk := testenv.UniqueName("conflict")
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err := r.put(ctx, r.db, pk); !errors.As(err, &ccf) {
		t.Errorf("PutItem: %v, want ConditionalCheckFailedException", err)
	}
	_, err := r.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{{
		Put: &ddbtypes.Put{TableName: &r.env.TableName, Item: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "sk": &ddbtypes.AttributeValueMemberS{Value: "faultinject"},
		}},
	}}})
	var tce *ddbtypes.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 1 || aws.ToString(tce.CancellationReasons[0].Code) != "ConditionalCheckFailed" {
		t.Errorf("TransactWriteItems: %v, want TransactionCanceled with a ConditionalCheckFailed reason", err)
	}
	if r.stored(t, pk) {
		t.Error("a conflicted write was applied")
	}
}

// A lost response is the hard case the fault runs lean on: the service applied the
// call, the caller saw an error.
func TestLostResponseAppliesTheWrite(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	r.in.Add(fi.Rule{Service: fi.DynamoDB, Operation: "PutItem", Kind: fi.LostResponse, From: 1})
	pk := testenv.UniqueName("lost")
	if err := r.put(ctx, r.db, pk); err == nil {
		t.Fatal("a lost response answered success")
	}
	if !r.stored(t, pk) {
		t.Error("lost_response did not apply the write")
	}

	r.in.Clear()
	r.in.Add(fi.Rule{Service: fi.SES, Operation: "SendEmail", Kind: fi.LostResponse, From: 1})
	to := testenv.UniqueName("lost") + "@example.com"
	if err := r.send(ctx, to); err == nil {
		t.Fatal("a lost SES response answered success")
	}
	if got := r.env.MailsTo(t, to); len(got) != 1 {
		t.Errorf("%d mails after a lost SES response, want 1 (SES took it)", len(got))
	}
}

func (r *rig) send(ctx context.Context, to string) error {
	_, err := r.ses.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("noreply@example.com"),
		Destination:      &sestypes.Destination{ToAddresses: []string{to}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String("faultinject")},
			Body:    &sestypes.Body{Text: &sestypes.Content{Data: aws.String("faultinject")}},
		}},
	})
	return err
}

func TestRefusedCallsWriteNothing(t *testing.T) {
	r := newRig(t)
	for _, k := range []fi.Kind{fi.Unreachable, fi.ServerError, fi.Timeout} {
		t.Run(string(k), func(t *testing.T) {
			r.in.Clear()
			r.in.Add(fi.Rule{Service: fi.DynamoDB, Operation: "PutItem", Kind: k, From: 1, Hang: time.Minute})
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			pk := testenv.UniqueName(string(k))
			err := r.put(ctx, r.db, pk)
			if err == nil {
				t.Fatal("the faulted call succeeded")
			}
			if k == fi.Timeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("timeout: %v, want the caller's deadline", err)
			}
			if r.stored(t, pk) {
				t.Error("a call that never reached the service was applied")
			}
			to := testenv.UniqueName(string(k)) + "@example.com"
			r.in.Clear()
			r.in.Add(fi.Rule{Service: fi.SES, Kind: k, From: 1, Hang: time.Minute})
			sctx, scancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer scancel()
			if err := r.send(sctx, to); err == nil {
				t.Fatal("the faulted SendEmail succeeded")
			}
			if got := r.env.MailsTo(t, to); len(got) != 0 {
				t.Errorf("%d mails from a refused SendEmail, want 0", len(got))
			}
		})
	}
}

func TestKillAfterStopsEveryLaterCall(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	var kills atomic.Int32
	done := make(chan struct{})
	r.in.KillAfter(2).OnKill(func() { kills.Add(1); close(done) })
	base := testenv.UniqueName("kill")
	for i := range 4 {
		err := r.put(ctx, r.db, base+"-"+string(rune('a'+i)))
		if alive := i < 2; (err == nil) != alive {
			t.Errorf("call %d: %v, want success %v", i+1, err, alive)
		}
		if i >= 2 && !errors.Is(err, fi.ErrKilled) {
			t.Errorf("call %d: %v, want ErrKilled", i+1, err)
		}
		if got := r.stored(t, base+"-"+string(rune('a'+i))); got != (i < 2) {
			t.Errorf("call %d stored %v after a kill after 2 calls", i+1, got)
		}
	}
	<-done
	if n := kills.Load(); n != 1 {
		t.Errorf("OnKill ran %d times, want once", n)
	}
	calls := r.in.Calls()
	if len(calls) != 4 || calls[1].Killed || !calls[2].Killed || !calls[3].Killed {
		t.Errorf("calls %+v, want two through and two killed", calls)
	}
}
