package mail

import (
	"strings"
	"testing"
)

func TestExecute(t *testing.T) {
	f := fields{"A": "a<", "B": "", "U": "https://x.test/é"}
	for _, tc := range []struct {
		src, text, html, err string
	}{
		{src: "x{{.A}}y", text: "xa<y", html: "xa&lt;y"},
		{src: "{{if .A}}1{{if .B}}2{{else}}3{{end}}{{else}}4{{end}}", text: "13", html: "13"},
		{src: "{{if .B}}{{.A}}{{end}}z", text: "z", html: "z"},
		{src: `<a href="{{.U}}">{{.U}}</a>`, text: `<a href="https://x.test/é">https://x.test/é</a>`,
			html: `<a href="https://x.test/%c3%a9">https://x.test/é</a>`},
		{src: "{{.C}}", err: `no field "C"`},
		{src: "{{if .A}}x", err: "without {{end}}"},
		{src: "x{{end}}", err: "without {{if}}"},
		{src: "{{.A", err: "unclosed"},
		{src: "{{printf .A}}", err: "unsupported"},
		{src: "{{if .A}}{{else}}{{else}}{{end}}", err: "followed by"},
	} {
		for _, html := range []bool{false, true} {
			var b strings.Builder
			err := execute(&b, tc.src, f, html)
			want := tc.text
			if html {
				want = tc.html
			}
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("%q: error %v, want %q", tc.src, err, tc.err)
			case tc.err == "" && (err != nil || b.String() != want):
				t.Errorf("%q (html %v) = %q, %v; want %q", tc.src, html, b.String(), err, want)
			}
		}
	}
}
