package mail

import (
	"embed"
	"errors"
	"fmt"
	"strings"
)

// The mails are rendered by this small renderer rather than text/template and
// html/template: those call reflect's MethodByName, which makes the linker keep every
// exported method of every reachable type (all the SDK clients' operations), and this
// package parsed ~30 templates at init. Without them each function's binary is 7 MB
// smaller and starts sooner.
//
// A template knows {{.Field}}, {{if .Field}}…{{else}}…{{end}} (true when the field is
// not empty) and nothing else. Values come from a fields map built by each mail's
// function. In an HTML template every value is escaped as html/template escaped it in
// these templates' contexts: as text, or, right after href=", as a URL (an unsafe
// scheme becomes #ZgotmplZ, the rest is normalized and escaped). testdata/golden.json
// holds what html/template made of every mail; TestGolden keeps the two identical.

//go:embed templates
var templateFS embed.FS

// fields are a mail's values by template field name.
type fields map[string]string

// render renders templates/<name>.<lang>.{subject.txt,txt,html} with f.
func render(name, locale, to string, f fields) (Message, error) {
	base := "templates/" + name + "." + Language(locale)
	subj, err := renderFile(base+".subject.txt", f, false)
	if err != nil {
		return Message{}, err
	}
	text, err := renderFile(base+".txt", f, false)
	if err != nil {
		return Message{}, err
	}
	html, err := renderFile(base+".html", f, true)
	if err != nil {
		return Message{}, err
	}
	return Message{To: to, Subject: strings.TrimSpace(subj), Text: text, HTML: html}, nil
}

func renderFile(path string, f fields, html bool) (string, error) {
	src, err := templateFS.ReadFile(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(src) + 256)
	if err := execute(&b, string(src), f, html); err != nil {
		return "", fmt.Errorf("mail: %s: %w", path, err)
	}
	return b.String(), nil
}

// execute writes src with its actions done to b.
func execute(b *strings.Builder, src string, f fields, html bool) error {
	rest, end, err := block(b, src, f, html, true, 0)
	if err != nil {
		return err
	}
	if end != "" || rest != "" {
		return fmt.Errorf("unexpected {{%s}}", end)
	}
	return nil
}

// block writes src up to the {{else}} or {{end}} that closes it (or the end of src at
// depth 0), when emit, and returns what follows and which of the two closed it.
func block(b *strings.Builder, src string, f fields, html, emit bool, depth int) (rest, closer string, err error) {
	for {
		i := strings.Index(src, "{{")
		if i < 0 {
			if depth > 0 {
				return "", "", errors.New("{{if}} without {{end}}")
			}
			if emit {
				b.WriteString(src)
			}
			return "", "", nil
		}
		lit := src[:i]
		if emit {
			b.WriteString(lit)
		}
		j := strings.Index(src[i:], "}}")
		if j < 0 {
			return "", "", errors.New("unclosed {{")
		}
		action := strings.TrimSpace(src[i+2 : i+j])
		src = src[i+j+2:]
		switch {
		case action == "else" || action == "end":
			if depth == 0 {
				return "", "", fmt.Errorf("{{%s}} without {{if}}", action)
			}
			return src, action, nil
		case strings.HasPrefix(action, "if "):
			v, err := lookup(f, strings.TrimSpace(action[3:]))
			if err != nil {
				return "", "", err
			}
			var closer string
			if src, closer, err = block(b, src, f, html, emit && v != "", depth+1); err != nil {
				return "", "", err
			}
			if closer == "else" {
				if src, closer, err = block(b, src, f, html, emit && v == "", depth+1); err != nil {
					return "", "", err
				}
				if closer != "end" {
					return "", "", errors.New("{{else}} followed by {{else}}")
				}
			}
		default:
			v, err := lookup(f, action)
			if err != nil {
				return "", "", err
			}
			if !emit {
				continue
			}
			switch {
			case !html:
				b.WriteString(v)
			case strings.HasSuffix(lit, `href="`):
				htmlEscaper.WriteString(b, normalizeURL(filterURL(v)))
			default:
				htmlEscaper.WriteString(b, v)
			}
		}
	}
}

func lookup(f fields, action string) (string, error) {
	name, ok := strings.CutPrefix(action, ".")
	if !ok || name == "" || strings.ContainsAny(name, " .") {
		return "", fmt.Errorf("unsupported action {{%s}}", action)
	}
	v, ok := f[name]
	if !ok {
		return "", fmt.Errorf("no field %q", name)
	}
	return v, nil
}

// htmlEscaper is html/template's escaper for text and quoted attribute values.
var htmlEscaper = strings.NewReplacer(
	"\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;",
)

// filterURL is html/template's urlFilter: a URL whose scheme is not http, https or
// mailto becomes "#ZgotmplZ".
func filterURL(s string) string {
	if scheme, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(scheme, "/") {
		if !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "mailto") {
			return "#ZgotmplZ"
		}
	}
	return s
}

// normalizeURL is html/template's urlNormalizer: it percent-encodes the bytes that
// are neither unreserved nor reserved in RFC 3986 (and quotes and parentheses), and
// leaves existing escapes alone.
func normalizeURL(s string) string {
	var b strings.Builder
	written := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		case strings.IndexByte("!#$&*+,/:;=?@[]-._~%", c) >= 0:
			continue
		}
		if written == 0 {
			b.Grow(len(s) + 16)
		}
		b.WriteString(s[written:i])
		fmt.Fprintf(&b, "%%%02x", c)
		written = i + 1
	}
	if written == 0 {
		return s
	}
	b.WriteString(s[written:])
	return b.String()
}
