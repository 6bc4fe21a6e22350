package strictjson_test

import (
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/strictjson"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		kind      strictjson.Kind
		field     string
	}{
		{"an object", `{"a":1,"b":[{"a":1},{"a":2}],"c":{"a":{"b":null}}}`, "", ""},
		{"keys that differ", `{"a":1,"ab":2,"b":{"A":1,"b":2}}`, "", ""},
		{"empty object", `{}`, "", ""},
		{"empty", ``, strictjson.Malformed, ""},
		{"null", `null`, strictjson.Malformed, ""},
		{"array", `[{}]`, strictjson.Malformed, ""},
		{"string", `"x"`, strictjson.Malformed, ""},
		{"two objects", `{}{}`, strictjson.Malformed, ""},
		{"trailing garbage", `{} x`, strictjson.Malformed, ""},
		{"truncated", `{"a":`, strictjson.Malformed, ""},
		{"invalid UTF-8 in a value", "{\"a\":\"\xff\"}", strictjson.InvalidUTF8, ""},
		{"invalid UTF-8 in a key", "{\"\xc3\x28\":1}", strictjson.InvalidUTF8, ""},
		{"top-level key twice", `{"triggerSource":"a","triggerSource":"b"}`, strictjson.Duplicate, "triggerSource"},
		{"top-level key twice in another case", `{"triggerSource":"a","TriggerSource":"b"}`, strictjson.Duplicate, "TriggerSource"},
		{"upper case", `{"dryRun":true,"DRYRUN":false}`, strictjson.Duplicate, "DRYRUN"},
		{"the Kelvin sign folds to k", "{\"key\":1,\"\u212aey\":2}", strictjson.Duplicate, "\u212aey"},
		{"nested key twice", `{"request":{"userAttributes":{"email":"a","email":"b"}}}`, strictjson.Duplicate, "request.userAttributes.email"},
		{"key twice inside an array", `{"a":[1,{"x":1,"X":2}]}`, strictjson.Duplicate, "a.X"},
		{"after a nested object", `{"a":{"b":1},"a":2}`, strictjson.Duplicate, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Check([]byte(tc.raw))
			if got := strictjson.KindOf(err); got != tc.kind {
				t.Fatalf("Check = %v (kind %q), want kind %q", err, got, tc.kind)
			}
			if tc.field != "" && err.(*strictjson.Error).Field != tc.field {
				t.Errorf("field %q, want %q", err.(*strictjson.Error).Field, tc.field)
			}
		})
	}
}

func TestCheckCutsLongFields(t *testing.T) {
	k := strings.Repeat("é", 100)
	err := strictjson.Check([]byte(`{"` + k + `":1,"` + k + `":2}`))
	if f := err.(*strictjson.Error).Field; len(f) > 70 || !strings.HasPrefix(k, strings.TrimSuffix(f, "…")) {
		t.Errorf("field %q", f)
	}
}

func TestObject(t *testing.T) {
	known := []string{"triggerSource", "request"}
	m, err := strictjson.Object([]byte(`{"triggerSource":"PreSignUp_SignUp","request":{},"newAwsField":1}`), known, true)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := strictjson.String(m["triggerSource"]); !ok || s != "PreSignUp_SignUp" {
		t.Errorf("triggerSource = %q, %v", s, ok)
	}
	if _, ok := strictjson.String(m["request"]); ok {
		t.Error("an object read as a string")
	}
	if _, ok := strictjson.String(m["absent"]); ok {
		t.Error("an absent member read as a string")
	}
	for _, tc := range []struct {
		name, raw    string
		allowUnknown bool
		kind         strictjson.Kind
	}{
		{"a known key in another case, AWS shape", `{"TriggerSource":"x"}`, true, strictjson.Unknown},
		{"a known key in another case, our shape", `{"TRIGGERSOURCE":"x"}`, false, strictjson.Unknown},
		{"an unknown key, our shape", `{"tenantId":"x"}`, false, strictjson.Unknown},
		{"a repeated key", `{"request":{},"request":1}`, true, strictjson.Duplicate},
	} {
		_, err := strictjson.Object([]byte(tc.raw), known, tc.allowUnknown)
		if strictjson.KindOf(err) != tc.kind {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.kind)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[{"b":1}]}`, `{"a":1,"A":2}`, "{\"\xff\":1}", `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := strictjson.Check(raw)
		if err != nil && strictjson.KindOf(err) == "" {
			t.Fatalf("an error of no kind: %v", err)
		}
		if err == nil {
			if _, err := strictjson.Object(raw, nil, true); err != nil {
				t.Fatalf("Check passed, Object refused: %v", err)
			}
		}
	})
}
