package httpapi_test

import (
	"testing"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/httpapi"
)

type target struct {
	UserID string `json:"userId,omitempty"`
	Email  string `json:"email,omitempty"`
}

// Regressions found by the adversarial suite: invalid UTF-8 reached the service as
// U+FFFD, and a key repeated in another case slipped past the duplicate check while
// encoding/json filled the same field twice (the last one won).
func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, reason string }{
		{"invalid UTF-8 in a value", "{\"userId\":\"\xc3\x28\"}", "malformed_body"},
		{"invalid UTF-8 in a key", "{\"\xff\":1}", "malformed_body"},
		{"field twice", `{"userId":"a","userId":"b"}`, "duplicate_field"},
		{"field twice in another case", `{"userId":"a","USERID":"b"}`, "duplicate_field"},
		{"field twice with the Kelvin sign", "{\"email\":\"a\",\"\u212aey\":1,\"key\":2}", "duplicate_field"},
		{"unknown field", `{"tenantId":"x"}`, "unknown_field"},
		{"empty", " ", "empty_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v target
			err := httpapi.Decode(httpapi.Request{Body: tc.body}, &v)
			if apperr.CodeOf(err) != apperr.Invalid || apperr.ReasonOf(err) != tc.reason {
				t.Errorf("Decode = %v (%+v), want invalid (%s)", err, v, tc.reason)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	var v target
	if err := httpapi.Decode(httpapi.Request{Body: `{"userId":"usr_1","email":"é@example.test"}`}, &v); err != nil {
		t.Fatal(err)
	}
	if v.UserID != "usr_1" || v.Email != "é@example.test" {
		t.Errorf("decoded %+v", v)
	}
}
