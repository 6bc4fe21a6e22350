package httpapi_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/httpapi"
)

// FuzzDecode: Decode never panics, refuses only with invalid, and accepts only one
// JSON object of valid UTF-8 within MaxBody.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"userId":"usr_1"}`, `{"email":"a@b.c"}`, `{}`, `{"userId":"a","USERID":"b"}`, "{\"userId\":\"\xff\"}", `[]`, ``} {
		f.Add(s, false)
	}
	f.Add("eyJ1c2VySWQiOiJ1c3JfMSJ9", true)
	f.Fuzz(func(t *testing.T, body string, b64 bool) {
		var v target
		err := httpapi.Decode(httpapi.Request{Body: body, IsBase64Encoded: b64}, &v)
		if err != nil {
			if apperr.CodeOf(err) != apperr.Invalid || apperr.ReasonOf(err) == "" {
				t.Fatalf("refusal %v is not an invalid with a reason", err)
			}
			return
		}
		if !b64 && (len(body) > httpapi.MaxBody || !utf8.ValidString(body) || !json.Valid([]byte(body))) {
			t.Fatalf("accepted %q", body)
		}
		if !utf8.ValidString(v.UserID) || !utf8.ValidString(v.Email) {
			t.Fatal("decoded invalid UTF-8")
		}
	})
}
