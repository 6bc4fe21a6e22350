package localstack

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

func TestParseRate(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"rate(1 minute)": time.Minute, "rate(5 minutes)": 5 * time.Minute, "rate(2 hours)": 2 * time.Hour, "rate(1 day)": 24 * time.Hour,
	} {
		if got, err := parseRate(expr); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, bad := range []string{"", "rate(0 minutes)", "rate(1 minutes)", "rate(5 minute)", "rate(5 weeks)", "cron(0 12 * * ? *)", "rate(x minutes)", "rate(5minutes)"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

// TestTemplateSchedules: the stack runs every Schedule event of template.yaml, each
// at its rate unless told otherwise.
func TestTemplateSchedules(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(root + "/template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	got, err := schedules(fns, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"ActivationEmailFunction CatchUp": 5 * time.Minute, "SupportResetFunction RunDue": time.Minute}
	if len(got) != len(want) {
		t.Fatalf("schedules %+v, want %v", got, want)
	}
	for _, sc := range got {
		if want[sc.Function+" "+sc.Event] != sc.Every {
			t.Errorf("%s %s every %v, want %v", sc.Function, sc.Event, sc.Every, want[sc.Function+" "+sc.Event])
		}
	}
	fast, _ := schedules(fns, time.Second)
	for _, sc := range fast {
		if sc.Every != time.Second {
			t.Errorf("%s %s every %v with the override", sc.Function, sc.Event, sc.Every)
		}
	}
	var ev map[string]any
	raw, err := scheduledEvent("SupportResetFunction-RunDue", time.Now())
	if err != nil || json.Unmarshal(raw, &ev) != nil || ev["source"] != "aws.events" || ev["detail-type"] != "Scheduled Event" {
		t.Errorf("scheduled event %s (%v)", raw, err)
	}
}
