package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// The template's Schedule events, run as EventBridge runs them: every event of every
// function at its rate, each delivery a Scheduled Event. (EventBridge may deliver a
// rule twice or late; the functions are built for it. This runner invokes a rule's
// function once at a time: a tick that comes while the previous invocation still
// runs is dropped.)

// Schedule is one Schedule event the stack runs.
type Schedule struct {
	Function, Event string
	Every           time.Duration
}

// schedules lists the Schedule events of fns with their rates; every, when set,
// replaces every rate (a test's faster clock).
func schedules(fns []samtemplate.Function, every time.Duration) ([]Schedule, error) {
	var out []Schedule
	for _, fn := range fns {
		for _, ev := range fn.Events {
			if ev.Type != "Schedule" {
				continue
			}
			d, err := parseRate(ev.Schedule)
			if err != nil {
				return nil, fmt.Errorf("%s event %s: %w", fn.LogicalID, ev.Name, err)
			}
			if every > 0 {
				d = every
			}
			out = append(out, Schedule{Function: fn.LogicalID, Event: ev.Name, Every: d})
		}
	}
	return out, nil
}

// parseRate reads an EventBridge rate expression: rate(1 minute), rate(5 minutes),
// rate(2 hours), rate(1 day). Cron expressions are not run locally.
func parseRate(expr string) (time.Duration, error) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(expr), "rate(")
	inner, ok2 := strings.CutSuffix(inner, ")")
	fields := strings.Fields(inner)
	if !ok || !ok2 || len(fields) != 2 {
		return 0, fmt.Errorf("schedule %q: the local stack runs rate(<n> <unit>) expressions only", expr)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("schedule %q: want a positive whole number", expr)
	}
	unit := map[string]time.Duration{
		"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	}[fields[1]]
	// EventBridge wants the singular for 1 and the plural otherwise.
	if unit == 0 || (n == 1) != !strings.HasSuffix(fields[1], "s") {
		return 0, fmt.Errorf("schedule %q: want minute, hour or day (plural for more than one)", expr)
	}
	return time.Duration(n) * unit, nil
}

// scheduledEvent is the payload EventBridge delivers for a scheduled rule.
func scheduledEvent(rule string, at time.Time) ([]byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"version": "0", "id": hex.EncodeToString(id), "detail-type": "Scheduled Event", "source": "aws.events",
		"account": AccountID, "time": at.UTC().Format(time.RFC3339), "region": Region,
		"resources": []string{"arn:aws:events:" + Region + ":" + AccountID + ":rule/" + rule}, "detail": map[string]any{},
	})
}

// runSchedules invokes each schedule's function at its rate until ctx ends.
func runSchedules(ctx context.Context, wg *sync.WaitGroup, inv Invoker, scheds []Schedule, log *slog.Logger) {
	for _, sc := range scheds {
		wg.Go(func() {
			tick := time.NewTicker(sc.Every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case at := <-tick.C:
					payload, err := scheduledEvent(sc.Function+"-"+sc.Event, at)
					if err == nil {
						_, err = inv.Invoke(ctx, sc.Function, payload)
					}
					if err != nil && ctx.Err() == nil {
						log.Error("scheduled invocation failed", "function", sc.Function, "event", sc.Event, "error", err)
					}
				}
			}
		})
	}
}
