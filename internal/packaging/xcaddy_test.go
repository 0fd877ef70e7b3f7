package packaging

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	// The plugin registers its Caddy modules, which the xcaddy build must
	// contain.
	_ "github.com/caddy-webhooks/caddy-webhooks"
)

// Time limits of the xcaddy build. On a 2-core machine, a build took 20 to
// 40 seconds with a warm module and build cache, and over 5 minutes with a
// cold build cache, because it compiles Caddy, nats-server and their
// dependencies.
const (
	installTimeout = 5 * time.Minute
	buildTimeout   = 20 * time.Minute
)

// TestXcaddyBuild builds Caddy with the plugin the way users do, with
// xcaddy, and checks the binary: the Caddy version, the plugin's modules,
// and a delivery of the demo config.
func TestXcaddyBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short skips the integration tests, and this one builds Caddy with xcaddy")
	}
	goBin := requireGo(t)
	root := repoRoot(t)
	xcaddy := installXcaddy(t, goBin)
	binary := buildCaddy(t, goBin, xcaddy, root)

	t.Run("version", func(t *testing.T) {
		out := runCommand(t, time.Minute, binary, []string{"version"}, t.TempDir(), os.Environ())
		if !strings.HasPrefix(string(out), caddyVersion+" ") {
			t.Errorf("caddy version printed %q, expected Caddy %s: xcaddy built another version", out, caddyVersion)
		}
	})
	t.Run("modules", func(t *testing.T) {
		checkModules(t, binary)
	})
	t.Run("demo", func(t *testing.T) {
		runDemo(t, binary, root)
	})
}

// installXcaddy installs xcaddy at xcaddyVersion into a temporary GOBIN,
// through the module proxy, and returns its path.
func installXcaddy(t *testing.T, goBin string) string {
	t.Helper()
	gobin := t.TempDir()
	start := time.Now()
	runCommand(t, commandTimeout(t, installTimeout), goBin,
		[]string{"install", xcaddyPackage + "@" + xcaddyVersion},
		t.TempDir(), goEnv("GOBIN="+gobin))
	t.Logf("go install xcaddy@%s took %s", xcaddyVersion, time.Since(start).Round(time.Millisecond))
	return filepath.Join(gobin, "xcaddy")
}

// buildCaddy runs `xcaddy build v2.11.9 --with <module>=<root>` and returns
// the binary's path. The version argument keeps xcaddy from building the
// latest Caddy release. xcaddy's settings are dropped from the environment
// (see goEnv), so a developer's XCADDY_* variables cannot change the build,
// and XCADDY_WHICH_GO makes it use the same go command as the test.
// TMPDIR puts xcaddy's temporary module into the test's directory, which
// is removed even when the build is interrupted.
func buildCaddy(t *testing.T, goBin, xcaddy, root string) string {
	t.Helper()
	output := filepath.Join(t.TempDir(), "caddy")
	env := goEnv("XCADDY_WHICH_GO="+goBin, "TMPDIR="+t.TempDir(), "GOPROXY="+checkoutProxy(t, goBin))
	start := time.Now()
	runCommand(t, commandTimeout(t, buildTimeout), xcaddy,
		[]string{"build", caddyVersion, "--with", modulePath + "=" + root, "--output", output},
		t.TempDir(), env)
	t.Logf("xcaddy build took %s", time.Since(start).Round(time.Millisecond))
	return output
}

// checkoutProxy returns the GOPROXY for the xcaddy build: the configured
// proxies joined with "|", so that any error falls back to the next one,
// with "off" at the end.
//
// xcaddy v0.4.5 runs `go get <plugin>` even when --with replaces the plugin
// with a directory, so Go looks up the plugin's versions. Go then uses the
// replacement only if the lookup ends in "not found", but a proxy may
// respond with another error, such as 403 Forbidden for a module path it
// does not serve. "off" ends every failed lookup in "not found". "direct"
// is left out, because a test must not clone repositories.
func checkoutProxy(t *testing.T, goBin string) string {
	t.Helper()
	out := runCommand(t, time.Minute, goBin, []string{"env", "GOPROXY"}, t.TempDir(), goEnv())
	var proxies []string
	for _, entry := range strings.FieldsFunc(strings.TrimSpace(string(out)), func(r rune) bool { return r == ',' || r == '|' }) {
		if entry != "direct" && entry != "off" {
			proxies = append(proxies, entry)
		}
	}
	return strings.Join(append(proxies, "off"), "|")
}

// projectModules returns the IDs of the Caddy modules whose Go package is
// in this repository, as registered by the blank import of the plugin.
func projectModules(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatalf("looking up registered module %s: %v", id, err)
		}
		pkg := modulePackage(info.New())
		if pkg == modulePath || strings.HasPrefix(pkg, modulePath+"/") {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		t.Fatalf("no Caddy module of %s is registered: the blank import of the plugin registers none", modulePath)
	}
	return ids
}

// modulePackage returns the Go package of a module value, dereferencing
// the pointer that ModuleInfo.New usually returns, as `caddy list-modules`
// does.
func modulePackage(module caddy.Module) string {
	typ := reflect.TypeOf(module)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return typ.PkgPath()
}

// listedModule is one entry of `caddy list-modules --json`.
type listedModule struct {
	Name       string `json:"module_name"`
	Type       string `json:"module_type"`
	PackageURL string `json:"package_url"`
}

// checkModules requires every module of the project in the binary, as a
// non-standard module from this Go module.
func checkModules(t *testing.T, binary string) {
	out := runCommand(t, time.Minute, binary, []string{"list-modules", "--json"}, t.TempDir(), os.Environ())
	var listed []listedModule
	if err := json.Unmarshal(out, &listed); err != nil {
		t.Fatalf("parsing the output of caddy list-modules --json: %v\n%s", err, tail(out, 4<<10))
	}
	byName := make(map[string]listedModule, len(listed))
	for _, m := range listed {
		byName[m.Name] = m
	}

	expected := projectModules(t)
	t.Logf("modules of %s: %s", modulePath, strings.Join(expected, ", "))
	for _, id := range expected {
		m, ok := byName[id]
		if !ok {
			t.Errorf("caddy list-modules does not list module %s: the xcaddy build lacks it; import its package from the plugin's root package", id)
			continue
		}
		if m.Type != "non-standard" || m.PackageURL != modulePath {
			t.Errorf("caddy list-modules lists module %s as %s from %q, expected non-standard from %s", id, m.Type, m.PackageURL, modulePath)
		}
	}
}

// demoSecret is the signing secret of the demo endpoint in
// testdata/demo.Caddyfile.
const demoSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// runDemo runs testdata/demo.Caddyfile with the binary, its fixed ports
// replaced by free ones on 127.0.0.1, creates an order, and verifies the
// signed webhook that the demo's receiver site logs.
func runDemo(t *testing.T, binary, root string) {
	data, err := os.ReadFile(filepath.Join(root, "testdata", "demo.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	api, upstream, receiver := freePort(t), freePort(t), freePort(t)
	replacements := []string{
		"localhost:2019", admin,
		":8080", fmt.Sprintf(":%d", api),
		":9000", fmt.Sprintf(":%d", upstream),
		":9001", fmt.Sprintf(":%d", receiver),
	}
	for i := 0; i < len(replacements); i += 2 {
		if !strings.Contains(string(data), replacements[i]) {
			t.Fatalf("testdata/demo.Caddyfile no longer contains %q: update the port replacements of this test", replacements[i])
		}
	}
	home := t.TempDir()
	config := filepath.Join(home, "Caddyfile")
	if err := os.WriteFile(config, []byte(strings.NewReplacer(replacements...).Replace(string(data))), 0o600); err != nil {
		t.Fatal(err)
	}

	p := startProcess(t, binary, []string{"run", "--config", config, "--adapter", "caddyfile"},
		append(os.Environ(),
			"HOME="+home,
			"XDG_DATA_HOME="+filepath.Join(home, "data"),
			"XDG_CONFIG_HOME="+filepath.Join(home, "config")))
	waitFor(t, time.Minute, "the webhooks app to start", func() error {
		if err := p.exited(); err != nil {
			return err
		}
		if len(p.logEntries("webhooks app started")) == 0 {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})

	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/orders", api), "application/json", strings.NewReader(`{"item":"book"}`))
	if err != nil {
		t.Fatalf("POST /orders: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders: status %d, expected 201", resp.StatusCode)
	}

	var delivery map[string]any
	waitFor(t, 30*time.Second, "the demo receiver to log a delivery", func() error {
		for _, entry := range p.logEntries("handled request") {
			if id, _ := entry["webhook_id"].(string); id != "" {
				delivery = entry
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return err
		}
		return fmt.Errorf("no delivery logged yet")
	})
	verifyDemoDelivery(t, delivery)
}

// verifyDemoDelivery checks a delivery that the demo receiver logged with
// the Standard Webhooks Go library.
func verifyDemoDelivery(t *testing.T, logged map[string]any) {
	t.Helper()
	body, _ := logged["webhook_body"].(string)
	var envelope struct {
		Type string `json:"type"`
		Data struct {
			Request struct {
				Method string `json:"method"`
				Path   string `json:"path"`
			} `json:"request"`
			Response struct {
				Status int `json:"status"`
			} `json:"response"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &envelope); err != nil {
		t.Fatalf("the delivered body %q is not a JSON envelope: %v", body, err)
	}
	if envelope.Type != "order.created" {
		t.Errorf("delivered event type %q, expected order.created", envelope.Type)
	}
	request := envelope.Data.Request.Method + " " + envelope.Data.Request.Path
	if request != "POST /orders" || envelope.Data.Response.Status != http.StatusCreated {
		t.Errorf("delivered event describes %s answered %d, expected POST /orders answered 201", request, envelope.Data.Response.Status)
	}

	header := http.Header{}
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		value, _ := logged[strings.ReplaceAll(name, "-", "_")].(string)
		header.Set(name, value)
	}
	wh, err := standardwebhooks.NewWebhook(demoSecret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify([]byte(body), header); err != nil {
		t.Errorf("the demo delivery does not verify with the demo secret: %v (headers %v)", err, header)
	}
}
