package probe

import (
	"maps"
	"testing"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestMentions(t *testing.T) {
	for _, tc := range []struct {
		expr, p string
		want    bool
	}{
		{"SET n = :v", ":v", true},
		{"SET n = :v2", ":v", false},
		{"SET n = :v2, m = :v", ":v", true},
		{"SET #s = :v_x", ":v", false},
		{"SET #s = :v, #st = :w", "#s", true},
		{"SET #st = :w", "#s", false},
		{"ADD n :one", ":one", true},
		{"", ":v", false},
	} {
		if got := mentions(tc.expr, tc.p); got != tc.want {
			t.Errorf("mentions(%q, %q) = %v, want %v", tc.expr, tc.p, got, tc.want)
		}
	}
}

func TestUsedDropsWhatOnlyTheConditionUsed(t *testing.T) {
	expr := "SET #state = :created, tenantId = :tid"
	names := map[string]string{"#state": "state", "#exp": "expiresAt"}
	values := map[string]ddbtypes.AttributeValue{
		":created": &ddbtypes.AttributeValueMemberS{Value: "created"},
		":tid":     &ddbtypes.AttributeValueMemberS{Value: "t"},
		":pending": &ddbtypes.AttributeValueMemberS{Value: "pending"}, // the condition's
	}
	n, v := used(&expr, names, values)
	if !maps.Equal(n, map[string]string{"#state": "state"}) {
		t.Errorf("names = %v", n)
	}
	if len(v) != 2 || v[":created"] == nil || v[":tid"] == nil {
		t.Errorf("values = %v", v)
	}
	if n, v := used(nil, names, values); n != nil || v != nil {
		t.Errorf("no expression: %v, %v", n, v)
	}
}
