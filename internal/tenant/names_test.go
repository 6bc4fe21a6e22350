package tenant

import (
	"strings"
	"testing"
)

func TestNormalizeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  Acme IT ", "Acme IT"},
		{"Infoge\u0301rance", "Infogérance"},
		{"Acme\u00a0IT", "Acme IT"},
		{"Acme\u202fIT\u3000", "Acme IT"},
		{"Acme  IT", "Acme  IT"},
		{"ACME it", "ACME it"},
		{"Ａｃｍｅ", "Ａｃｍｅ"}, // fullwidth stays: visible, and NFC is not NFKC
	} {
		if got := NormalizeName(tc.in); got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNameProblem(t *testing.T) {
	ok := []string{"Acme IT", "Infogérance Martin SARL", "Ünïcödé GmbH", "株式会社アクメ", "Акме", "O'Brien & Fils", "Acme\u00a0IT", "Ａｃｍｅ", "Acme 🛡"}
	for _, s := range ok {
		if p := NameProblem(s); p != "" {
			t.Errorf("NameProblem(%q) = %s, want none", s, p)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"Acme \xff", NameInvalidUTF8},
		{"Acme\x00", NameControl},
		{"Acme\u0085IT", NameControl},
		{"Acme\u2028IT", NameControl},
		{"Acme\u2029IT", NameControl},
		{"Acme\u200b IT", NameInvisible},
		{"Acme\u200cIT", NameInvisible},
		{"Acme\u200dIT", NameInvisible},
		{"Acme\u200eIT", NameInvisible},
		{"Acme\u202eTI", NameInvisible},
		{"Acme\u2066IT\u2069", NameInvisible},
		{"\ufeffAcme", NameInvisible},
		{"Ac\u00adme", NameInvisible},
		{"Acme\u2060", NameInvisible},
		{"Acme\U000E0041", NameInvisible},
		{"\u3164", NameInvisible},
		{"Acme\u115f", NameInvisible},
		{"Acme\u034f", NameInvisible},
		{"Acme\ufe0f", NameInvisible},
		{"Acme\ue000", NamePrivateUse},
		{"Acme\U000F0000", NamePrivateUse},
		{"Acme\ufffe", NameUnassigned},
		{"Acme\ufdd0", NameUnassigned},
		{"Acme\ufffd", NameUnassigned},
		{"Acme\u0378", NameUnassigned},
	} {
		if got := NameProblem(tc.in); got != tc.want {
			t.Errorf("NameProblem(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if NameLength(strings.Repeat("é", 10)) != 10 {
		t.Error("NameLength counts bytes")
	}
}
