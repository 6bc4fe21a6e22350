package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's Chromium (`make chromium` installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium not found on PATH: install it with `make chromium` (apt-get update && apt-get install -y chromium)")
	return ""
}

// TestBrowserClaim opens a claim link from a mail in the SES emulator in
// headless Chromium: the browser accepts and stores the __Host- cookie with
// its flags (Secure, HttpOnly, SameSite=Strict; http://127.0.0.1 is a secure
// context for Chromium), and a second opening shows the "link already used"
// page and leaves the cookie as it was.
func TestBrowserClaim(t *testing.T) {
	exe := chromium(t)
	c := client(t)
	o, link := sendToNewProUser(t, c)

	// The profile directory is removed only once the browser and its helper
	// processes have exited (they write to it until then).
	profile, err := os.MkdirTemp("", "orgkey-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			if err := os.RemoveAll(profile); err == nil || i == 50 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	var title, text string
	var cookies []*network.Cookie
	if err := chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.Title(&title),
		chromedp.Text("body", &text, chromedp.ByQuery),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			cookies, err = network.GetCookies().WithURLs([]string{shared.ep.API + "/"}).Do(ctx)
			return err
		}),
	); err != nil {
		t.Fatalf("open the claim link: %v", err)
	}
	if title != "Organization key stored" || !strings.Contains(text, "This browser now holds your organization's key") {
		t.Errorf("first opening: title %q, text %q", title, text)
	}
	if len(cookies) != 1 {
		t.Fatalf("the browser holds %d cookies for %s, want 1: %+v", len(cookies), shared.ep.API, cookies)
	}
	ck := cookies[0]
	if ck.Name != "__Host-orgkey" || ck.Value != o.Key || !ck.Secure || !ck.HTTPOnly ||
		ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || ck.Domain != "127.0.0.1" || ck.Session {
		t.Errorf("cookie as the browser stored it: %+v", ck)
	}
	// HttpOnly: the page's scripts cannot read it.
	var jsCookies string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`document.cookie`, &jsCookies)); err != nil {
		t.Fatal(err)
	}
	if jsCookies != "" {
		t.Errorf("document.cookie = %q, want the key hidden from scripts", jsCookies)
	}

	if err := chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.Title(&title),
		chromedp.Text("body", &text, chromedp.ByQuery),
		chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			cookies, err = network.GetCookies().WithURLs([]string{shared.ep.API + "/"}).Do(ctx)
			return err
		}),
	); err != nil {
		t.Fatalf("open the claim link again: %v", err)
	}
	if !strings.Contains(title, "Link no longer valid") || !strings.Contains(text, "This link is no longer valid") {
		t.Errorf("second opening: title %q, text %q", title, text)
	}
	if len(cookies) != 1 || cookies[0].Value != o.Key {
		t.Errorf("after the second opening the browser holds %+v", cookies)
	}
}
