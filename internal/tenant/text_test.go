package tenant

import "testing"

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		s             string
		text, id, eml bool
	}{
		{"Acme IT", true, false, false},
		{"org_123", true, true, false},
		{"a@example.test", true, true, true},
		{"Eve <eve@example.test>", true, false, false},
		{"a@example.test ", true, false, false},
		{"Acme\x00", false, false, false},
		{"Acme\u0007", false, false, false},
		{"Acme \xff", false, false, false},
		{"Acme \uFFFD", false, false, false},
		{"", true, true, false},
	} {
		if PlainText(tc.s) != tc.text || PlainID(tc.s) != tc.id || PlainEmail(tc.s) != tc.eml {
			t.Errorf("%q: text %v id %v email %v, want %v %v %v", tc.s,
				PlainText(tc.s), PlainID(tc.s), PlainEmail(tc.s), tc.text, tc.id, tc.eml)
		}
	}
}
