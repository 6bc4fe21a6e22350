package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mspvault/orgkey/internal/dev/localstack"
	"github.com/mspvault/orgkey/internal/tenant"
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

// browser starts a headless Chromium with a profile of its own; every context made
// from the returned one is a tab of that browser.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := chromium(t)
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
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The first Run starts the browser.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tab opens a new tab of the browser, bounded in time. What the page's script logs
// or throws, and requests that fail, are shown when the test fails.
func tab(t *testing.T, browserCtx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	var (
		mu   sync.Mutex
		seen []string
	)
	chromedp.ListenTarget(ctx, func(ev any) {
		var line string
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				line += " " + string(a.Value) + a.Description
			}
			line = "console:" + line
		case *runtime.EventExceptionThrown:
			line = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				line += " " + e.ExceptionDetails.Exception.Description
			}
		case *network.EventLoadingFailed:
			line = fmt.Sprintf("request failed: %s %s %s", e.ErrorText, e.BlockedReason, e.CorsErrorStatus)
		default:
			return
		}
		mu.Lock()
		seen = append(seen, line)
		mu.Unlock()
	})
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			for _, l := range seen {
				t.Log("browser " + l)
			}
		}
	})
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	if err := chromedp.Run(ctx, runtime.Enable(), network.Enable()); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// orgKeyCookies are the browser's cookies for the API's origin.
func orgKeyCookies(ctx context.Context) ([]*network.Cookie, error) {
	var cookies []*network.Cookie
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{shared.ep.API + "/"}).Do(ctx)
		return err
	}))
	return cookies, err
}

// scannerPass does to the link what Safe Links' detonation does: loads the page and
// runs its script, fills and submits every form (through the script's handlers and
// natively), clicks every button, hidden or not, with no session. It returns every
// response body the page received and the page's HTML at the end.
const scannerScript = `(async () => {
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  for (const input of document.querySelectorAll("input")) {
    input.value = input.type === "email" ? "scanner@example.net" : "123456";
  }
  for (const form of document.querySelectorAll("form")) {
    form.hidden = false;
    form.requestSubmit();
    await wait(300);
  }
  for (const b of document.querySelectorAll("button")) {
    b.hidden = false;
    b.click();
    await wait(300);
  }
  for (const p of document.querySelectorAll("div[hidden]")) {
    p.hidden = false;
  }
  for (const b of document.querySelectorAll("button")) {
    b.click();
    await wait(300);
  }
  for (const form of document.querySelectorAll("form")) {
    try { form.submit(); } catch (e) {}
  }
  await wait(500);
  return document.getElementById("status").textContent;
})()`

// TestBrowserClaim drives the real page in headless Chromium. A scanner pass first:
// the page is loaded, its script run, its forms submitted and its buttons clicked with
// no session; the link stays live, no cookie is set and nothing the scanner received
// holds the key. Then the addressee opens the link in their own tab, signs in on the
// page with their password and presses the button: the browser holds the __Host-
// cookie with its flags (Secure, HttpOnly, SameSite=Strict; http://127.0.0.1 is a
// secure context for Chromium), the link is spent, and pressing again changes nothing.
// Last, an invited user with a temporary password signs in through the new-password
// challenge on the page and gets their organization's key.
func TestBrowserClaim(t *testing.T) {
	c := client(t)
	o, link := sendToNewProUser(t, c)
	pro := o.members[len(o.members)-1]
	b := browser(t)

	// What the scanner's tab received, response by response.
	scanner := tab(t, b)
	var (
		mu       sync.Mutex
		finished []network.RequestID
	)
	chromedp.ListenTarget(scanner, func(ev any) {
		if e, ok := ev.(*network.EventLoadingFinished); ok {
			mu.Lock()
			finished = append(finished, e.RequestID)
			mu.Unlock()
		}
	})
	var status, html string
	if err := chromedp.Run(scanner,
		network.Enable(),
		chromedp.Navigate(link),
		chromedp.WaitVisible("#signin", chromedp.ByID),
		chromedp.Evaluate(scannerScript, &status, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
		chromedp.OuterHTML("html", &html, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("scanner pass: %v", err)
	}
	if st, err := c.LinkState(t.Context(), link); err != nil || !st.UsedAt.IsZero() || !st.RevokedAt.IsZero() || st.Attempts != 0 {
		t.Fatalf("after the scanner pass the link is %+v, %v", st, err)
	}
	if cookies, err := orgKeyCookies(scanner); err != nil || len(cookies) != 0 {
		t.Fatalf("the scanner's browser holds cookies %v, %v", cookies, err)
	}
	mu.Lock()
	ids := append([]network.RequestID(nil), finished...)
	mu.Unlock()
	seen, n := html, 0
	for _, id := range ids {
		var body []byte
		if err := chromedp.Run(scanner, chromedp.ActionFunc(func(ctx context.Context) error {
			var err error
			body, err = network.GetResponseBody(id).Do(ctx)
			return err
		})); err == nil {
			seen += string(body)
			n++
		}
	}
	if strings.Contains(seen, o.Key) || strings.Contains(seen, strings.ReplaceAll(o.Key, "-", "")) {
		t.Fatal("something the scanner received holds the org key")
	}
	if n == 0 {
		t.Error("no response of the scanner pass was captured: the check checks nothing")
	}
	if !strings.Contains(status, "Sign") && !strings.Contains(status, "session") {
		t.Logf("scanner pass ended on: %q", status)
	}
	for _, r := range []string{http.MethodHead, http.MethodGet} {
		resp, err := c.Fetch(t.Context(), r, localstack.LinkPage(link), localstack.SafeLinksAgent)
		if err != nil || resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
			t.Fatalf("%s as Safe Links: %v %v", r, resp, err)
		}
	}

	// The addressee, in their own tab.
	user := tab(t, b)
	if err := chromedp.Run(user,
		chromedp.Navigate(link),
		chromedp.WaitVisible("#signin", chromedp.ByID),
	); err != nil {
		t.Fatalf("open the link: %v", err)
	}
	var url string
	if err := chromedp.Run(user, chromedp.Location(&url)); err != nil || strings.Contains(url, "token") {
		t.Errorf("the token stays in the address bar: %q %v", url, err)
	}
	signIn(t, user, pro.Email, pro.Password)
	pressStore(t, user, "stored in this browser")
	cookies, err := orgKeyCookies(user)
	if err != nil {
		t.Fatal(err)
	}
	wantKeyCookie(t, cookies, o.Key)
	// HttpOnly: the page's scripts cannot read it.
	var jsCookies string
	if err := chromedp.Run(user, chromedp.Evaluate(`document.cookie`, &jsCookies)); err != nil {
		t.Fatal(err)
	}
	if jsCookies != "" {
		t.Errorf("document.cookie = %q, want the key hidden from scripts", jsCookies)
	}
	if st, err := c.LinkState(t.Context(), link); err != nil || st.UsedAt.IsZero() {
		t.Fatalf("after the addressee's claim the link is %+v, %v", st, err)
	}
	// The link opened again in the same browser: the page finds the session the
	// sign-in left (no new sign-in) and offers the button; pressing it, the link is
	// spent, and the cookie stays as it was.
	// (From about:blank: from the page itself, a link that differs only by its
	// fragment would not load it again.)
	if err := chromedp.Run(user, chromedp.Navigate("about:blank"), chromedp.Navigate(link)); err != nil {
		t.Fatalf("open the link again: %v", err)
	}
	pressStore(t, user, "no longer valid")
	if cookies, err := orgKeyCookies(user); err != nil || len(cookies) != 1 || cookies[0].Value != o.Key {
		t.Errorf("after the second press the browser holds %d cookies, %v", len(cookies), err)
	}

	// An invited user's first sign-in, on the page: the new-password challenge.
	o2 := newOrg(t, c)
	invited := o2.invite(t, c, tenant.ProUser)
	link2 := sendLink(t, c, o2, invited)
	// Another person: a browser of their own (this one holds the first user's session).
	first := tab(t, browser(t))
	if err := chromedp.Run(first,
		chromedp.Navigate(link2),
		chromedp.WaitVisible("#signin", chromedp.ByID),
	); err != nil {
		t.Fatalf("open the invited user's link: %v", err)
	}
	var lang string
	if err := chromedp.Run(first, chromedp.Evaluate(`document.documentElement.lang`, &lang)); err != nil || lang != "en" {
		t.Errorf("page language %q (the browser asks for en-US)", lang)
	}
	signIn(t, first, invited.Email, invited.Password)
	if err := chromedp.Run(first,
		chromedp.WaitVisible("#newpassword", chromedp.ByID),
		chromedp.SendKeys("#new-password", localstack.DemoPassword+"-new", chromedp.ByID),
		chromedp.Click("#newpassword button", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("new password: %v", err)
	}
	pressStore(t, first, "stored in this browser")
	cookies, err = orgKeyCookies(first)
	if err != nil {
		t.Fatal(err)
	}
	wantKeyCookie(t, cookies, o2.Key)
	if _, err := c.SignIn(t.Context(), invited.Email, localstack.DemoPassword+"-new"); err != nil {
		t.Errorf("the invited user's new password does not sign in: %v", err)
	}
}

// signIn fills the page's sign-in form and submits it.
func signIn(t *testing.T, ctx context.Context, email, password string) {
	t.Helper()
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#email", email, chromedp.ByID),
		chromedp.SendKeys("#password", password, chromedp.ByID),
		chromedp.Click("#signin button", chromedp.ByQuery),
	); err != nil {
		t.Fatalf("sign in on the page: %v", err)
	}
}

// pressStore waits for the button, presses it and waits for the page to say want.
// The waits have a deadline of their own, so that on failure the page can still be
// asked what it says.
func pressStore(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	wait, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	err := chromedp.Run(wait,
		chromedp.WaitVisible("#store", chromedp.ByID),
		chromedp.Click("#store", chromedp.ByID),
		// A background tab gets no animation frames: poll on an interval.
		chromedp.Poll(`document.getElementById("status").textContent.includes(`+strconv.Quote(want)+`)`, nil, chromedp.WithPollingInterval(200*time.Millisecond)),
	)
	if err != nil {
		var status, lang string
		serr := chromedp.Run(ctx, chromedp.Text("#status", &status, chromedp.ByID), chromedp.Evaluate(`document.documentElement.lang`, &lang))
		t.Fatalf("press the button: %v (the page, lang %q, says %q (%v); want %q)", err, lang, status, serr, want)
	}
}

func wantKeyCookie(t *testing.T, cookies []*network.Cookie, key string) {
	t.Helper()
	if len(cookies) != 1 {
		t.Fatalf("the browser holds %d cookies for %s, want 1", len(cookies), shared.ep.API)
	}
	ck := cookies[0]
	if ck.Name != "__Host-orgkey" || ck.Value != key || !ck.Secure || !ck.HTTPOnly ||
		ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || ck.Domain != "127.0.0.1" || ck.Session {
		t.Errorf("cookie as the browser stored it: name %s, flags secure=%v httpOnly=%v sameSite=%s path=%s domain=%s session=%v, value is the key: %v",
			ck.Name, ck.Secure, ck.HTTPOnly, ck.SameSite, ck.Path, ck.Domain, ck.Session, ck.Value == key)
	}
}
