package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/nimbus-fn/nimbus/internal/testfn"
)

// The console's browser suite: a real `nimbus dev` serving the embedded
// console, driven through Debian's chromium by chromedp. Every step waits
// for DOM content (never for time) and checks what the gateway then holds
// or does, not only what the page says.

// browserStepTimeout bounds one wait for the page; the steps that wait for
// a function to start or for metrics to be recorded use the longer one.
const (
	browserStepTimeout = 60 * time.Second
	browserSlowTimeout = 120 * time.Second
)

// chromiumPath is the browser the suite drives: $NIMBUS_CHROMIUM, else
// chromium on PATH (Debian's package installs /usr/bin/chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NIMBUS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium, or set NIMBUS_CHROMIUM): the console's browser tests need it")
	return ""
}

// consoleArtifacts is where the suite saves screenshots for a reviewer:
// $NIMBUS_TEST_ARTIFACTS/console, else e2e/testdata/out/console (ignored by
// git). It is printed so the run's log says where to look.
func consoleArtifacts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "out", "console")
	if d := os.Getenv("NIMBUS_TEST_ARTIFACTS"); d != "" {
		dir = filepath.Join(d, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	t.Logf("console screenshots: %s", abs)
	return abs
}

// browser is one headless chromium tab of a given window size.
type browser struct {
	t         *testing.T
	ctx       context.Context
	shots     string
	base      string // the console's URL, ending in /console/
	shotCount int
}

func newBrowser(t *testing.T, base string, width, height int) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.WindowSize(width, height),
		chromedp.NoSandbox, // the suite may run as root (CI containers)
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, with no timeout: a timeout on
	// it would stop the browser when it expires.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, shots: consoleArtifacts(t), base: base}
}

// run performs steps, failing the test with what for context.
func (b *browser) run(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test with the page's text, which says what the user saw.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
}

// eval answers a JavaScript expression's value (a promise's, once settled).
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// open navigates to a console route ("#/functions/fn/test") and waits for sel.
func (b *browser) open(route, sel string) {
	b.t.Helper()
	b.run("opening "+route, browserStepTimeout, chromedp.Navigate(b.base+route), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// waitJS polls a JavaScript expression until it is truthy.
func (b *browser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		b.fail("waiting for "+what, err)
	}
}

// waitText waits until the element sel's text contains want.
func (b *browser) waitText(sel, want string, timeout time.Duration) {
	b.t.Helper()
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want)
	b.waitJS(fmt.Sprintf("%s to say %q", sel, want), expr, timeout)
}

// text answers the text of sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, "reading "+sel, fmt.Sprintf(`document.querySelector(%q).textContent`, sel))
}

// set gives an input, textarea or select a value the way a user's typing
// or picking ends: the value changes, then input and change fire.
func (b *browser) set(sel, value string) {
	b.t.Helper()
	b.run("finding "+sel, browserStepTimeout, chromedp.WaitVisible(chromedp.CSS(sel)))
	expr := fmt.Sprintf(`(() => {
  const e = document.querySelector(%q);
  const proto = e instanceof HTMLSelectElement ? HTMLSelectElement.prototype : e instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, %q);
  e.dispatchEvent(new Event('input', { bubbles: true }));
  e.dispatchEvent(new Event('change', { bubbles: true }));
  return e.value === %q;
})()`, sel, value, value)
	if !eval[bool](b, "setting "+sel, expr) {
		b.t.Fatalf("%s did not take the value %q", sel, value)
	}
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.run("clicking "+sel, browserStepTimeout, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// clickText clicks the first visible button or link whose text is label.
func (b *browser) clickText(label string) {
	b.t.Helper()
	expr := fmt.Sprintf(`[...document.querySelectorAll('button, a')].some(e => e.textContent.trim() === %q && e.offsetParent !== null)`, label)
	b.waitJS("a button "+label, expr, browserStepTimeout)
	click := fmt.Sprintf(`(() => { const e = [...document.querySelectorAll('button, a')].find(e => e.textContent.trim() === %q && e.offsetParent !== null); e.focus(); e.click(); return true; })()`, label)
	eval[bool](b, "clicking "+label, click)
}

// screenshot saves the whole page as NN-name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	b.shotCount++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.shotCount, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// waitUpdated waits until the function page's header shows the function
// Active with its last update done (the page follows an update in progress).
func (b *browser) waitUpdated() {
	b.t.Helper()
	b.waitJS("the function Active and updated", `(() => { const e = document.querySelector('#fn-state'); return !!e && e.dataset.state === 'Active' && e.dataset.update === 'Successful'; })()`, browserSlowTimeout)
}

// loadStable opens route in a fresh document, waits until ready (a
// JavaScript condition that holds once the page's data has arrived) and
// fails when the page's content moved while loading: the cumulative
// layout shift the browser's Layout Instability API reports must stay
// under 0.1 (what Web Vitals calls good).
func (b *browser) loadStable(route, ready string) {
	b.t.Helper()
	b.run("a fresh document", browserStepTimeout, chromedp.Navigate("about:blank"))
	b.run("opening "+route, browserStepTimeout, chromedp.Navigate(b.base+route))
	b.waitJS(route+" loaded", ready, browserSlowTimeout)
	cls := eval[float64](b, "measuring layout shift", `(() => {
  const po = new PerformanceObserver(() => {});
  po.observe({type: 'layout-shift', buffered: true});
  const shifts = po.takeRecords();
  po.disconnect();
  return shifts.filter(e => !e.hadRecentInput).reduce((s, e) => s + e.value, 0);
})()`)
	b.t.Logf("%s: cumulative layout shift %.4f while loading", route, cls)
	if cls >= 0.1 {
		b.t.Errorf("%s moved while its data loaded: cumulative layout shift %.3f, want < 0.1", route, cls)
	}
}

// noHorizontalOverflow fails when the page is wider than the window (it
// would scroll sideways on a phone).
func (b *browser) noHorizontalOverflow(what string) {
	b.t.Helper()
	widths := eval[[]int](b, "measuring "+what, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if widths[0] > widths[1] {
		b.t.Errorf("%s is %dpx wide in a %dpx window", what, widths[0], widths[1])
	}
}

// startConsoleDev starts `nimbus dev` on an empty spec dir (gatewayConf
// "" for none: dev mode without keys needs no login) and answers the
// console's URL and the Invoke API's.
func startConsoleDev(t *testing.T, specFiles map[string]string, gatewayConf string) (consoleURL, endpoint string) {
	t.Helper()
	specDir := t.TempDir()
	writeTree(t, specDir, specFiles)
	args := []string{"dev", "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(t.TempDir(), "state"), "--log-level", "warn"}
	if gatewayConf != "" {
		conf := filepath.Join(t.TempDir(), "gateway.hcl")
		writeTree(t, filepath.Dir(conf), map[string]string{filepath.Base(conf): gatewayConf})
		args = append(args, "--config", conf)
	}
	cmd := exec.Command(nimbusOnce(t), append(args, specDir)...)
	cmd.Dir = specDir
	p := startNimbusProc(t, cmd)
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			if err := p.stop(syscall.SIGINT); err != nil {
				t.Errorf("nimbus dev exit on SIGINT: %v\n%s", err, p.stderr)
			}
		}
	})
	return p.endpoint + "/console/", p.endpoint
}

// TestConsoleBrowser creates, tests, versions, routes, monitors and tails
// a function through the console in chromium, against a real `nimbus dev`
// running a real aws-lambda-go function, and saves a screenshot of each page.
func TestConsoleBrowser(t *testing.T) {
	chromiumPath(t)
	consoleURL, endpoint := startConsoleDev(t, nil, "")
	zipPath := filepath.Join(t.TempDir(), "echo.zip")
	if err := os.WriteFile(zipPath, zipDir(t, testfn.Dir(t, "echo")), 0o644); err != nil {
		t.Fatal(err)
	}
	lc := lambda.New(lambda.Options{Region: e2eRegion, BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1})
	const fn = "console-fn"
	fnRoute := "#/functions/" + fn + "/"

	b := newBrowser(t, consoleURL, 1280, 800)

	// Functions: empty, then the create form with a zip upload.
	b.open("#/functions", "#functions-table")
	b.waitText("#functions-table tbody", "No functions yet", browserStepTimeout)
	b.screenshot("functions-empty")
	b.clickText("Create function")
	b.run("create form", browserStepTimeout, chromedp.WaitVisible(chromedp.CSS("#create-name")))
	b.click(`input[name="source"][value="zip"]`)
	b.run("choosing the zip", browserStepTimeout, chromedp.SetUploadFiles(chromedp.CSS("#create-zip"), []string{zipPath}))
	b.set("#create-name", fn)
	b.set("#create-runtime", "provided.al2023")
	b.screenshot("create-function")
	b.click(`form button[type="submit"]`)

	// The new function's Test tab opens; it becomes Active.
	b.run("test tab after create", browserSlowTimeout, chromedp.WaitVisible(chromedp.CSS("#test-invoke")))
	b.waitUpdated()
	got, err := lc.GetFunction(context.Background(), &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
	if err != nil || aws.ToString(got.Configuration.Handler) != "bootstrap" || string(got.Configuration.Runtime) != "provided.al2023" {
		t.Fatalf("the console's CreateFunction: %v %+v", err, got)
	}

	// Save a named test event; the gateway keeps it.
	const event = `{"greeting":"hi console"}`
	b.set("#test-name", "hello")
	b.set("#test-body", event)
	b.click("#test-save")
	b.waitText(".stack form .status", "Saved test event hello", browserStepTimeout)
	resp := mustDo(t, mustRequest("GET", endpoint+"/nimbus/v1/functions/"+fn+"/test-events"))
	var saved struct {
		Events []struct {
			Name  string          `json:"name"`
			Event json.RawMessage `json:"event"`
		} `json:"events"`
	}
	if err := json.Unmarshal(resp.body, &saved); err != nil || len(saved.Events) != 1 || saved.Events[0].Name != "hello" || compactJSON(t, saved.Events[0].Event) != event {
		t.Fatalf("saved test events: %d %s (%v)", resp.StatusCode, resp.body, err)
	}

	// A fresh page picks the saved event and invokes with it.
	b.open("#/functions", "#functions-table")
	b.open(fnRoute+"test", "#test-invoke")
	b.waitJS("the saved event in the list", `!!document.querySelector('#test-saved option[value="hello"]')`, browserStepTimeout)
	b.set("#test-saved", "hello")
	b.waitJS("the saved event loaded", `document.querySelector('#test-body').value.includes('hi console')`, browserStepTimeout)
	b.click("#test-invoke")
	b.waitText("#invoke-outcome", "Succeeded", browserSlowTimeout)
	if r := b.text("#invoke-response"); compactJSON(t, json.RawMessage(r)) != event {
		t.Errorf("response shown: %q, want %s", r, event)
	}
	report := map[string]string{}
	rows := eval[[][]string](b, "reading the REPORT figures",
		`[...document.querySelectorAll('#invoke-report > div')].map(d => [d.dataset.key, d.querySelector('dd').textContent.trim()])`)
	for _, r := range rows {
		report[r[0]] = r[1]
	}
	for _, k := range []string{"duration", "billedDuration", "memorySize", "maxMemoryUsed", "initDuration"} {
		if report[k] == "" {
			t.Errorf("REPORT figure %s missing from the page: %v", k, report)
		}
	}
	if report["memorySize"] != "128 MB" {
		t.Errorf("Memory Size shown %q, want 128 MB", report["memorySize"])
	}
	logTail := b.text("#invoke-log")
	if !strings.Contains(logTail, "REPORT RequestId:") || !strings.Contains(logTail, "START RequestId:") {
		t.Errorf("log tail shown: %q", logTail)
	}
	m := reportRequestID.FindStringSubmatch(logTail)
	if m == nil {
		t.Fatalf("no REPORT request id in the log tail %q", logTail)
	}
	firstRID := m[1]
	b.screenshot("test-invoke")

	// Configuration: memory, an environment variable, reserved
	// concurrency and a function URL with CORS, each read back with the SDK.
	b.open(fnRoute+"configuration", "#cfg-memory")
	b.set("#cfg-memory", "256")
	b.clickText("Save general settings")
	b.waitText("form[aria-labelledby=cfg-general] .status", "Saved.", browserStepTimeout)
	b.waitUpdated()
	b.clickText("Add variable")
	b.set(`input[name="env-name-0"]`, "GREETING")
	b.set(`input[name="env-value-0"]`, "from the console")
	b.clickText("Save environment")
	b.waitText("form[aria-labelledby=cfg-env] .status", "Environment saved.", browserStepTimeout)
	b.waitUpdated()
	b.set("#cfg-reserved-value", "5")
	b.clickText("Save reserved concurrency")
	b.waitText("form[aria-labelledby=cfg-reserved] .status", "Reserved concurrency saved.", browserStepTimeout)
	b.set("#url-origins", "https://example.com")
	b.set("#url-methods", "GET, POST")
	b.set("#url-maxage", "300")
	b.clickText("Create function URL")
	b.run("the function URL shown", browserStepTimeout, chromedp.WaitVisible(chromedp.CSS("#function-url")))
	cfg, err := lc.GetFunctionConfiguration(context.Background(), &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(fn)})
	if err != nil || aws.ToInt32(cfg.MemorySize) != 256 || cfg.Environment == nil || cfg.Environment.Variables["GREETING"] != "from the console" {
		t.Fatalf("configuration after the console's edits: %v %+v", err, cfg)
	}
	conc, err := lc.GetFunctionConcurrency(context.Background(), &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(fn)})
	if err != nil || aws.ToInt32(conc.ReservedConcurrentExecutions) != 5 {
		t.Fatalf("reserved concurrency after the console's edit: %v %+v", err, conc)
	}
	u, err := lc.GetFunctionUrlConfig(context.Background(), &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(fn)})
	if err != nil || u.Cors == nil || strings.Join(u.Cors.AllowOrigins, ",") != "https://example.com" || strings.Join(u.Cors.AllowMethods, ",") != "GET,POST" || aws.ToInt32(u.Cors.MaxAge) != 300 {
		t.Fatalf("function URL after the console's create: %v %+v", err, u)
	}
	if shown := b.text("#function-url"); shown != aws.ToString(u.FunctionUrl) {
		t.Errorf("function URL shown %q, the API has %q", shown, aws.ToString(u.FunctionUrl))
	}
	b.screenshot("configuration")

	// Versions: 1 with 256 MB, then 2 with 512 MB.
	b.open(fnRoute+"versions", "#publish-version")
	b.click("#publish-version")
	b.waitText("#versions-table", "1", browserStepTimeout)
	b.waitJS("version 1 listed", `!!document.querySelector('#versions-table tr[data-version="1"]')`, browserStepTimeout)
	b.open(fnRoute+"configuration", "#cfg-memory")
	b.set("#cfg-memory", "512")
	b.clickText("Save general settings")
	b.waitText("form[aria-labelledby=cfg-general] .status", "Saved.", browserStepTimeout)
	b.waitUpdated()
	b.open(fnRoute+"versions", "#publish-version")
	b.set("#pub-description", "512 MB")
	b.click("#publish-version")
	b.waitJS("version 2 listed", `!!document.querySelector('#versions-table tr[data-version="2"]')`, browserStepTimeout)
	b.screenshot("versions")

	// Aliases: live → 1, then 30 % of its traffic to 2 with the slider.
	b.open(fnRoute+"aliases", "#alias-name")
	b.set("#alias-name", "live")
	b.set("#alias-version", "1")
	b.clickText("Create alias")
	b.run("alias live listed", browserStepTimeout, chromedp.WaitVisible(chromedp.CSS(`form[data-alias="live"]`)))
	b.set("#alias-live-second", "2")
	b.set("#alias-live-weight", "30")
	b.waitText(`label[for="alias-live-weight"]`, "30%", browserStepTimeout)
	b.click(`form[data-alias="live"] button[type="submit"]`)
	b.waitText(`form[data-alias="live"] [data-routing]`, "1 70% · 2 30%", browserStepTimeout)
	alias, err := lc.GetAlias(context.Background(), &lambda.GetAliasInput{FunctionName: aws.String(fn), Name: aws.String("live")})
	if err != nil || alias.RoutingConfig == nil || alias.RoutingConfig.AdditionalVersionWeights["2"] != 0.3 || aws.ToString(alias.FunctionVersion) != "1" {
		t.Fatalf("alias after the slider: %v %+v", err, alias)
	}
	b.screenshot("aliases")

	// Monitor: the console's invocation is in the history's chart data.
	b.open(fnRoute+"monitor", `[data-chart="invocations"]`)
	b.waitJS("the invocation in the Monitor chart", `(() => {
  const s = document.querySelector('[data-chart="invocations"] [data-series="invocations"]');
  return !!s && Number(s.dataset.total) >= 1 && !!document.querySelector('[data-chart="invocations"] canvas');
})()`, browserSlowTimeout)
	b.clickText("15 min")
	b.waitText("#monitor-status", "15 min:", browserStepTimeout)
	b.screenshot("monitor")

	// Logs come from the instances that run now (the memory changes
	// replaced the first one): invoke from the console's Test tab again,
	// see that invocation in the tail, one made with the SDK arrive live,
	// and the request-id filter keep only the console invocation's lines.
	b.open(fnRoute+"test", "#test-invoke")
	b.waitJS("the saved event in the list", `!!document.querySelector('#test-saved option[value="hello"]')`, browserStepTimeout)
	b.click("#test-invoke")
	b.waitText("#invoke-outcome", "Succeeded", browserSlowTimeout)
	m = reportRequestID.FindStringSubmatch(b.text("#invoke-log"))
	if m == nil {
		t.Fatal("no REPORT request id in the second invocation's log tail")
	}
	consoleRID := m[1]
	b.open(fnRoute+"logs", "#log-lines")
	b.waitText("#logs-state", "Live", browserStepTimeout)
	hasReport := `[...document.querySelectorAll('#log-lines .logline')].some(l => l.dataset.requestId === %q && l.textContent.includes('REPORT'))`
	b.waitJS("the console invocation's REPORT in the tail", fmt.Sprintf(hasReport, consoleRID), browserSlowTimeout)
	out, err := lc.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"live":true}`), LogType: types.LogTypeTail})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("invoke while tailing: %v %+v", err, out)
	}
	tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	m = reportRequestID.FindStringSubmatch(string(tail))
	if m == nil {
		t.Fatalf("no REPORT request id in the SDK invocation's log tail %q", tail)
	}
	b.waitJS("the SDK invocation's REPORT arriving live", fmt.Sprintf(hasReport, m[1]), browserSlowTimeout)
	// The first invocation ran on the instance the memory changes
	// replaced: its lines are the ones the gateway kept.
	b.waitJS("the first (replaced) instance's REPORT in the tail", fmt.Sprintf(hasReport, firstRID), browserSlowTimeout)
	b.screenshot("logs")
	b.set("#logs-request", consoleRID)
	b.clickText("Filter")
	b.waitJS("only the filtered request's lines", fmt.Sprintf(`(() => {
  const ls = [...document.querySelectorAll('#log-lines .logline')];
  return ls.length > 0 && ls.every(l => l.dataset.requestId === %q) && ls.some(l => l.textContent.includes('REPORT'));
})()`, consoleRID), browserSlowTimeout)
	b.screenshot("logs-filtered")

	// The remaining tabs render; the list shows the invocations.
	b.open(fnRoute+"triggers", "#esm-title")
	b.waitText("main table", "No event sources invoke this function", browserStepTimeout)
	esm, err := lc.CreateEventSourceMapping(context.Background(), &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(fn), EventSourceArn: aws.String("schedule:rate(1 hour)"),
	})
	if err != nil {
		t.Fatalf("creating a schedule mapping: %v", err)
	}
	b.clickText("Refresh")
	b.waitText("main table", "schedule:rate(1 hour)", browserStepTimeout)
	b.waitText("main table", "Enabled", browserSlowTimeout)
	// The engine's own figures (/nimbus/v1/event-sources) join the
	// mapping's row as the tab refreshes itself: records and the last
	// result; a schedule reports no lag, so none is claimed.
	row := fmt.Sprintf(`#esm-table tr[data-uuid=%q]`, aws.ToString(esm.UUID))
	b.waitJS("the engine's figures in the mapping's row", fmt.Sprintf(`(() => {
  const r = document.querySelector(%q + ' td[data-field="records"]');
  return !!r && /^\d+ \/ \d+ \/ \d+$/.test(r.textContent.trim());
})()`, row), browserSlowTimeout)
	if lag := b.text(row + ` td[data-field="lag"]`); strings.TrimSpace(lag) != "—" {
		t.Errorf("a schedule mapping shows lag %q, want — (it reports none)", lag)
	}
	b.waitText("#esm-refreshed", "every 5 s", browserStepTimeout)
	b.clickText("Disable mapping " + aws.ToString(esm.UUID))
	b.waitText("main table", "Disabled", browserSlowTimeout)
	got2, err := lc.GetEventSourceMapping(context.Background(), &lambda.GetEventSourceMappingInput{UUID: esm.UUID})
	if err != nil || aws.ToString(got2.State) != "Disabled" {
		t.Fatalf("mapping after the console disabled it: %v %+v", err, got2)
	}
	b.screenshot("triggers")
	// The tab and the graphs fill in without moving the page.
	b.loadStable(fnRoute+"triggers", fmt.Sprintf(`/^\d+ \/ \d+ \/ \d+$/.test((document.querySelector(%q) || {textContent: ''}).textContent.trim())`, row+` td[data-field="records"]`))
	b.loadStable(fnRoute+"monitor", `(() => { const s = document.querySelector('[data-chart="invocations"] [data-series="invocations"]'); return !!s && Number(s.dataset.total) >= 1; })()`)
	b.open(fnRoute+"async", "#async-retries")
	b.waitText("#inv-title", "Recent asynchronous invocations", browserStepTimeout)
	b.set("#async-retries", "1")
	b.set("#async-age", "3600")
	b.clickText("Save asynchronous settings")
	b.waitText("form[aria-labelledby=async-title] .status", "Asynchronous invocation settings saved.", browserStepTimeout)
	eic, err := lc.GetFunctionEventInvokeConfig(context.Background(), &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(fn)})
	if err != nil || aws.ToInt32(eic.MaximumRetryAttempts) != 1 || aws.ToInt32(eic.MaximumEventAgeInSeconds) != 3600 {
		t.Fatalf("event invoke config after the console's edit: %v %+v", err, eic)
	}
	b.screenshot("async")
	b.open("#/functions", `#functions-table tr[data-function="`+fn+`"]`)
	b.waitJS("invocations in the list", `Number(document.querySelector('#functions-table tr[data-function="`+fn+`"] [data-metric="invocations"]').textContent) >= 2`, browserSlowTimeout)
	b.set("#fn-search", "no-such")
	b.waitText("#functions-table tbody", "No function matches", browserStepTimeout)
	b.set("#fn-search", "console")
	b.screenshot("functions")

	// Keyboard: from a fresh page the first Tab reaches the skip link, the
	// next ones the header and the list, each with a visible focus ring.
	b.run("reloading the list", browserStepTimeout, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#functions-table tr[data-function="`+fn+`"]`)))
	focused := func() (text, outline string) {
		r := eval[[]string](b, "the focused element", `document.activeElement === document.body ? ['', ''] : [document.activeElement.textContent.trim(), getComputedStyle(document.activeElement).outlineStyle]`)
		return r[0], r[1]
	}
	b.run("pressing Tab", browserStepTimeout, chromedp.KeyEvent(kb.Tab))
	if text, outline := focused(); text != "Skip to content" || outline == "none" {
		t.Errorf("first Tab focused %q with outline %q, want the skip link with a visible outline", text, outline)
	}
	seen := map[string]bool{}
	for range 4 {
		b.run("pressing Tab", browserStepTimeout, chromedp.KeyEvent(kb.Tab))
		text, outline := focused()
		if outline == "none" || outline == "" {
			t.Errorf("%q has focus without a visible outline", text)
		}
		seen[text] = true
	}
	if !seen["Create function"] || !seen[fn] {
		t.Errorf("Tab did not reach Create function and the function's link: %v", seen)
	}

	// A phone: the pages fit 390 px without sideways scrolling.
	phone := newBrowser(t, consoleURL, 390, 844)
	phone.shotCount = b.shotCount
	for _, p := range []struct{ route, sel, name string }{
		{"#/functions", `#functions-table tr[data-function="` + fn + `"]`, "phone-functions"},
		{fnRoute + "test", "#test-invoke", "phone-test"},
		{fnRoute + "monitor", `[data-chart="invocations"] canvas`, "phone-monitor"},
		{fnRoute + "aliases", `form[data-alias="live"]`, "phone-aliases"},
	} {
		phone.open(p.route, p.sel)
		phone.noHorizontalOverflow(p.name)
		phone.screenshot(p.name)
	}
}

// TestConsoleLogin signs in to a gateway with access keys: the console
// asks for keys, refuses wrong ones, works with right ones (writes carry
// the CSRF token; a write without it is refused), and signs out.
func TestConsoleLogin(t *testing.T) {
	chromiumPath(t)
	conf := fmt.Sprintf(`region = %q
account_id = %q
access_key %q {
  secret = %q
}
`, e2eRegion, e2eAccount, e2eAccessKey, e2eSecretKey)
	spec := `function "echo" {
  runtime = "provided.al2023"
  code { dir = "` + testfn.Dir(t, "echo") + `" }
  url { auth = "NONE" }
}
`
	consoleURL, endpoint := startConsoleDev(t, map[string]string{"nimbus.hcl": spec}, conf)
	if resp := mustDo(t, mustRequest("GET", endpoint+"/2015-03-31/functions")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned ListFunctions on a gateway with keys: %d %s", resp.StatusCode, resp.body)
	}
	b := newBrowser(t, consoleURL, 1280, 800)
	b.shotCount = 20

	b.open("#/functions", "#login-key")
	b.screenshot("login")
	b.set("#login-key", e2eAccessKey)
	b.set("#login-secret", "not-the-secret")
	b.click(`form button[type="submit"]`)
	b.waitText(".login .alert", "not accepted", browserStepTimeout)

	b.set("#login-secret", e2eSecretKey)
	b.click(`form button[type="submit"]`)
	b.run("the list after login", browserStepTimeout, chromedp.WaitVisible(chromedp.CSS(`#functions-table tr[data-function="echo"]`)))
	b.waitText(".who", e2eAccessKey, browserStepTimeout)
	b.screenshot("functions-signed-in")

	// The cookie is HttpOnly: the page's script cannot read it.
	cookies := eval[string](b, "reading document.cookie", `document.cookie`)
	if strings.Contains(cookies, "nimbus_console") {
		t.Errorf("the session cookie is visible to scripts: %q", cookies)
	}
	// A write through the console (with the CSRF token) is accepted…
	b.open("#/functions/echo/test", "#test-invoke")
	b.set("#test-name", "signed")
	b.set("#test-body", `{"a":1}`)
	b.click("#test-save")
	b.waitText(".stack form .status", "Saved test event signed", browserStepTimeout)
	// …and the same write without the token is refused.
	status := eval[int](b, "a write without the CSRF token",
		`fetch('/console/api/gw/nimbus/v1/functions/echo/test-events/nocsrf', {method: 'PUT', body: '{}', headers: {'Content-Type': 'application/json'}}).then(r => r.status)`)
	if status != http.StatusForbidden {
		t.Errorf("a session write without X-Nimbus-CSRF answered %d, want 403", status)
	}

	// The cookie reaches /console/… only: the same read at the API's own
	// path carries no session.
	if status := eval[int](b, "a read through the console's mount", `fetch('/console/api/gw/2015-03-31/functions').then(r => r.status)`); status != http.StatusOK {
		t.Errorf("ListFunctions through /console/api/gw with the session answered %d", status)
	}
	if status := eval[int](b, "a read outside /console", `fetch('/2015-03-31/functions').then(r => r.status)`); status != http.StatusForbidden {
		t.Errorf("ListFunctions at its own path (no cookie there) answered %d, want 403", status)
	}

	// A path-based function URL shares the console's origin. Its page
	// runs sandboxed in an opaque origin: its script reads no cookie and
	// no console answer, and cannot write with the session.
	b.run("the function URL page", browserStepTimeout, chromedp.Navigate(strings.TrimSuffix(consoleURL, "/console/")+"/url/echo/page"), chromedp.WaitReady("body"))
	fnPage := eval[[]string](b, "the function URL page's reach", `(async () => {
  const tryFetch = (path, init) => fetch(path, Object.assign({credentials: 'include'}, init || {}))
    .then(r => r.type === 'opaque' ? 'opaque' : 'read ' + r.status).catch(e => 'refused');
  return [
    String(self.origin),
    (() => { try { return document.cookie; } catch (e) { return 'blocked'; } })(),
    await tryFetch('/console/api/session'),
    await tryFetch('/console/api/gw/2015-03-31/functions'),
    await tryFetch('/console/api/gw/nimbus/v1/functions/echo/test-events/fromurl', {method: 'PUT', body: '{}', headers: {'X-Nimbus-CSRF': 'guess'}}),
  ];
})()`)
	if fnPage[0] != "null" || (fnPage[1] != "" && fnPage[1] != "blocked") || fnPage[2] != "refused" || fnPage[3] != "refused" || fnPage[4] != "refused" {
		t.Errorf("a function URL page's script: origin %q, cookie %q, session %s, ListFunctions %s, write %s; want an opaque origin reaching nothing",
			fnPage[0], fnPage[1], fnPage[2], fnPage[3], fnPage[4])
	}
	b.open("#/functions/echo/test", "#test-invoke")
	b.waitJS("the saved events listed", `!!document.querySelector('#test-saved option[value="signed"]')`, browserStepTimeout)
	if eval[bool](b, "the function page's write", `!!document.querySelector('#test-saved option[value="fromurl"]')`) {
		t.Error("the function URL page's script saved a test event with the console's session")
	}

	b.clickText("Sign out")
	b.run("the login form after signing out", browserStepTimeout, chromedp.WaitVisible(chromedp.CSS("#login-key")))
	status = eval[int](b, "a read after signing out", `fetch('/console/api/gw/2015-03-31/functions').then(r => r.status)`)
	if status < 400 {
		t.Errorf("ListFunctions after signing out answered %d", status)
	}
}

// compactJSON re-encodes JSON without spaces, for comparing answers.
func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// reportRequestID finds the request id of a REPORT line.
var reportRequestID = regexp.MustCompile(`REPORT RequestId: (\S+)`)

// TestConsoleBlueprintAndProvisioned creates a function from a Python
// blueprint through the console, invokes it with a saved test event, then
// sets provisioned concurrency on a published version in the console and
// reads it back through the SDK, with the status the console shows.
func TestConsoleBlueprintAndProvisioned(t *testing.T) {
	chromiumPath(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: the Python blueprint's function cannot run")
	}
	consoleURL, endpoint := startConsoleDev(t, nil, "")
	lc := lambda.New(lambda.Options{Region: e2eRegion, BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1})
	ctx := context.Background()
	const fn = "from-blueprint"
	fnRoute := "#/functions/" + fn + "/"
	b := newBrowser(t, consoleURL, 1280, 800)
	b.shotCount = 40

	b.open("#/functions", "#functions-table")
	b.clickText("Create function")
	b.run("create form", browserStepTimeout, chromedp.WaitVisible(chromedp.CSS("#create-blueprint")))
	b.waitJS("the Python blueprint offered", `!!document.querySelector('#create-blueprint option[value="hello-python"]')`, browserStepTimeout)
	b.set("#create-blueprint", "hello-python")
	b.set("#create-name", fn)
	b.waitJS("the blueprint's handler", `document.querySelector('#create-handler').value === 'app.handler'`, browserStepTimeout)
	b.screenshot("create-from-blueprint")
	b.click(`form button[type="submit"]`)
	b.run("test tab after create", browserSlowTimeout, chromedp.WaitVisible(chromedp.CSS("#test-invoke")))
	b.waitUpdated()
	got, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
	if err != nil || string(got.Configuration.Runtime) != "python3.12" || aws.ToString(got.Configuration.Handler) != "app.handler" {
		t.Fatalf("the function created from hello-python: %v %+v", err, got)
	}

	// A saved test event, picked on a fresh page, invokes it.
	b.set("#test-name", "ada")
	b.set("#test-body", `{"name":"Ada"}`)
	b.click("#test-save")
	b.waitText(".stack form .status", "Saved test event ada", browserStepTimeout)
	b.open("#/functions", "#functions-table")
	b.open(fnRoute+"test", "#test-invoke")
	b.waitJS("the saved event in the list", `!!document.querySelector('#test-saved option[value="ada"]')`, browserStepTimeout)
	b.set("#test-saved", "ada")
	b.waitJS("the saved event loaded", `document.querySelector('#test-body').value.includes('Ada')`, browserStepTimeout)
	b.click("#test-invoke")
	b.waitText("#invoke-outcome", "Succeeded", browserSlowTimeout)
	var answer struct {
		Message   string `json:"message"`
		RequestID string `json:"requestId"`
	}
	if err := json.Unmarshal([]byte(b.text("#invoke-response")), &answer); err != nil || answer.Message != "Hello, Ada!" || answer.RequestID == "" {
		t.Errorf("the blueprint's answer shown: %+v (%v)", answer, err)
	}
	if !strings.Contains(b.text("#invoke-log"), "REPORT RequestId: "+answer.RequestID) {
		t.Errorf("the log tail has no REPORT of %s: %q", answer.RequestID, b.text("#invoke-log"))
	}
	if d := eval[string](b, "the duration figure", `(document.querySelector('#invoke-report > div[data-key="billedDuration"] dd') || {}).textContent || ''`); !strings.HasSuffix(d, "ms") {
		t.Errorf("billed duration shown %q", d)
	}
	b.screenshot("blueprint-test")

	// Provisioned concurrency on version 1, set in the console.
	b.open(fnRoute+"versions", "#publish-version")
	b.click("#publish-version")
	b.waitJS("version 1 listed", `!!document.querySelector('#versions-table tr[data-version="1"]')`, browserStepTimeout)
	b.open(fnRoute+"configuration", "#cfg-prov-qualifier")
	b.set("#cfg-prov-qualifier", "1")
	b.set("#cfg-prov-value", "1")
	b.clickText("Save provisioned concurrency")
	b.waitText("form[aria-labelledby=cfg-prov] .status", "Provisioned concurrency for 1 requested.", browserStepTimeout)
	pc, err := lc.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("1")})
	if err != nil || aws.ToInt32(pc.RequestedProvisionedConcurrentExecutions) != 1 {
		t.Fatalf("GetProvisionedConcurrencyConfig after the console set it: %v %+v", err, pc)
	}
	// The console follows the status until it settles, and shows what
	// the API says.
	b.waitJS("READY shown", `(document.querySelector('form[aria-labelledby=cfg-prov] tr[data-qualifier="1"]') || {dataset: {}}).dataset.status === 'READY'`, browserSlowTimeout)
	pc, err = lc.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String(fn), Qualifier: aws.String("1")})
	if err != nil || string(pc.Status) != "READY" || aws.ToInt32(pc.AllocatedProvisionedConcurrentExecutions) != 1 {
		t.Fatalf("provisioned concurrency once the console shows READY: %v %+v", err, pc)
	}
	allocated := eval[string](b, "the allocated figure", `document.querySelector('form[aria-labelledby=cfg-prov] tr[data-qualifier="1"] td:nth-child(3)').textContent`)
	if allocated != "1" {
		t.Errorf("allocated shown %q, the API has 1", allocated)
	}
	b.screenshot("provisioned-concurrency")

	// Pages that fill in from several requests keep their layout.
	b.loadStable("#/functions", `/^\d+$/.test((document.querySelector('#functions-table tr[data-function="`+fn+`"] [data-metric="invocations"]') || {textContent: ''}).textContent.trim())`)
	b.loadStable(fnRoute+"configuration", `!!document.querySelector('form[aria-labelledby=cfg-prov] tr[data-qualifier="1"]')`)
	b.loadStable(fnRoute+"triggers", `!!document.querySelector('#esm-table td.empty')`)
	b.loadStable(fnRoute+"monitor", `!!document.querySelector('[data-chart="invocations"] canvas') && document.querySelector('#monitor-status').textContent.includes('points')`)
}
