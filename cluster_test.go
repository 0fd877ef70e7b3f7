package webhooks_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-webhooks/caddy-webhooks/internal/testpki"
)

// The cluster tests run several Caddy processes against one JetStream
// cluster: three nats-server processes built from the module, or the
// embedded servers of three Caddy processes. Every process listens on
// 127.0.0.1 on ports picked at run time.

var (
	natsBuildOnce sync.Once
	natsBinary    string
	natsBuildErr  error
)

// natsServerPath builds the nats-server of the module once per test binary.
func natsServerPath(t *testing.T) string {
	t.Helper()
	natsBuildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "caddy-webhooks-nats-")
		if err != nil {
			natsBuildErr = err
			return
		}
		natsBinary = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", natsBinary, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsBuildErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsBuildErr != nil {
		t.Fatalf("building nats-server: %v", natsBuildErr)
	}
	return natsBinary
}

// natsNode is one nats-server process of the external cluster. Restarts
// reuse its ports and store.
type natsNode struct {
	t                       *testing.T
	name, storeDir          string
	clientPort, clusterPort int
	routes                  string
	cmd                     *exec.Cmd
	done                    chan struct{}
	logs                    *logBuffer
}

func (n *natsNode) clientURL() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort)
}

func (n *natsNode) start() {
	n.t.Helper()
	n.cmd = exec.Command(natsServerPath(n.t),
		"--name", n.name,
		"--addr", "127.0.0.1", "--port", strconv.Itoa(n.clientPort),
		"--jetstream", "--store_dir", n.storeDir,
		"--cluster_name", "webhooks-test",
		"--cluster", fmt.Sprintf("nats://127.0.0.1:%d", n.clusterPort),
		"--routes", n.routes,
	)
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("starting nats-server %s: %v", n.name, err)
	}
	n.done = make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			n.logs.add(scanner.Text())
		}
		_ = n.cmd.Wait()
		close(n.done)
	}()
}

// stop ends the process with sig and waits for it.
func (n *natsNode) stop(sig syscall.Signal) {
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// startNATSCluster starts three nats-server processes as one JetStream
// cluster and waits until it accepts a stream with three replicas.
func startNATSCluster(t *testing.T) []*natsNode {
	t.Helper()
	nodes := make([]*natsNode, 3)
	var routes []string
	for i := range nodes {
		nodes[i] = &natsNode{
			t: t, name: fmt.Sprintf("nats-%d", i+1), storeDir: t.TempDir(),
			clientPort: freePort(t), clusterPort: freePort(t), logs: new(logBuffer),
		}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", nodes[i].clusterPort))
	}
	for _, n := range nodes {
		n.routes = strings.Join(routes, ",")
		n.start()
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop(syscall.SIGKILL)
			if t.Failed() {
				t.Logf("nats-server %s log:\n%s", n.name, strings.Join(n.logs.snapshot(), "\n"))
			}
		}
	})
	waitForStreamPlacement(t, nodes[0].clientURL())
	return nodes
}

// waitForStreamPlacement waits until the cluster can place a stream with
// three replicas, then deletes it.
func waitForStreamPlacement(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waitFor(t, 60*time.Second, "the NATS cluster to place a stream with 3 replicas", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3})
		if err == nil {
			err = js.DeleteStream(ctx, "PROBE")
		}
		return err
	})
}

// clusterStartTimeout is the start_timeout of the Caddy instances of the
// cluster tests. On a loaded machine, a new cluster has taken over 30
// seconds to elect its leaders and place the streams, beyond the default's
// margin.
const clusterStartTimeout = "2m"

// clusterConfig is a Caddyfile with the handler in front of a JSON API in
// the same Caddy. {{.NATS}} is the nats block.
const clusterConfig = `{
	admin {{.Admin}}
	persist_config off
	auto_https off
	grace_period 2s
	webhooks {
		{{.NATS}}
		endpoint main {{.Receiver}} {
			events order.*
			secret ` + testSecret + `
			timeout 1s
			retry 1s 2s
			allow_private
		}
	}
}

http://127.0.0.1:{{.Port}} {
	bind 127.0.0.1
	webhooks {
		event order.created POST /orders 201
	}
	reverse_proxy {{.Upstream}}
}

http://127.0.0.1:{{.APIPort}} {
	bind 127.0.0.1
	respond /orders "{}" 201
}
`

// clusterSite is one Caddy instance of a cluster test.
type clusterSite struct {
	site
	home string
	nats string
	proc *caddyProcess
}

func newClusterSite(t *testing.T, receiverURL, natsBlock string) *clusterSite {
	return &clusterSite{site: newSite(t, receiverURL, "1s"), home: t.TempDir(), nats: natsBlock}
}

func (s *clusterSite) start(t *testing.T) {
	text := renderConfig(t, clusterConfig, map[string]any{
		"Admin": s.Admin, "Receiver": s.Receiver, "NATS": s.nats,
		"Port": s.Port, "APIPort": s.APIPort, "Upstream": s.Upstream,
	})
	s.proc = startCaddy(t, text, s.home, s.Admin)
}

// startAll starts the sites at once, because an embedded cluster accepts
// the streams only once enough of its servers run.
func startAll(t *testing.T, sites []*clusterSite) {
	var wg sync.WaitGroup
	for _, s := range sites {
		wg.Go(func() { s.start(t) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// postOrder sends one event-producing request with key k and returns its
// status code.
func postOrder(s *clusterSite, key string) (int, error) {
	resp, err := http.Post(s.url("/orders?k="+key), "application/json", strings.NewReader(`{}`))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// loadResult counts what a load run saw.
type loadResult struct {
	sent     atomic.Int64
	failures atomic.Int64
	maxDelay atomic.Int64 // nanoseconds
}

// sendKeys sends one request per key, at most concurrency at a time, each
// to the site that pick returns. A request that fails or gets another
// status than 201 is counted and logged.
func sendKeys(t *testing.T, keys []string, concurrency int, pick func(i int) *clusterSite, result *loadResult) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				start := time.Now()
				status, err := postOrder(pick(i), keys[i])
				elapsed := time.Since(start)
				for {
					prev := result.maxDelay.Load()
					if int64(elapsed) <= prev || result.maxDelay.CompareAndSwap(prev, int64(elapsed)) {
						break
					}
				}
				if err != nil || status != http.StatusCreated {
					result.failures.Add(1)
					t.Errorf("POST /orders?k=%s: status %d, error %v; expected 201", keys[i], status, err)
				}
				result.sent.Add(1)
			}
		})
	}
	for i := range keys {
		work <- i
	}
	close(work)
	wg.Wait()
}

func orderKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return keys
}

// deliveredKeys counts the deliveries per request key, and the deliveries
// per webhook-id, whose repeats are redeliveries of one stored event.
func deliveredKeys(t *testing.T, rc *receiver) (byKey map[string]int, byID map[string]int) {
	byKey, byID = map[string]int{}, map[string]int{}
	for _, d := range rc.all() {
		var body struct {
			Data struct {
				Request struct {
					Query map[string][]string `json:"query"`
				} `json:"request"`
			} `json:"data"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil || len(body.Data.Request.Query["k"]) != 1 {
			t.Errorf("delivery without a request key: %s", d.Body)
			continue
		}
		byKey[body.Data.Request.Query["k"][0]]++
		byID[d.Header.Get("webhook-id")]++
	}
	return byKey, byID
}

// waitAllDelivered waits until every key has arrived at least once and logs
// the duplicates.
func waitAllDelivered(t *testing.T, rc *receiver, keys []string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("all %d events to arrive", len(keys)), func() error {
		byKey, _ := deliveredKeys(t, rc)
		var missing []string
		for _, k := range keys {
			if byKey[k] == 0 {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d missing, such as %v", len(missing), missing[:min(5, len(missing))])
		}
		return nil
	})
	byKey, byID := deliveredKeys(t, rc)
	extraByKey, extraByID := 0, 0
	for _, k := range keys {
		extraByKey += byKey[k] - 1
	}
	for _, n := range byID {
		extraByID += n - 1
	}
	t.Logf("%d events arrived; duplicates: %d extra deliveries of these request keys; %d redeliveries of one webhook-id since the test began",
		len(keys), extraByKey, extraByID)
}

// metricValue returns a sample of Caddy's metrics endpoint, or -1 when it
// is missing.
func metricValue(t *testing.T, admin, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		line := scanner.Text()
		if value, ok := strings.CutPrefix(line, sample+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	return -1
}

const publishedSample = `caddy_webhooks_events_published_total{event_type="order.created"}`

// waitPublished waits until the site's publisher has stored n events, so
// that killing it loses none of them.
func waitPublished(t *testing.T, s *clusterSite, n int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d events published by %s", n, s.Admin), func() error {
		if got := metricValue(t, s.Admin, publishedSample); got < float64(n) {
			return fmt.Errorf("%v published", got)
		}
		return nil
	})
}

func TestExternalClusterSurvivesFailures(t *testing.T) {
	caddyPath(t)
	nodes := startNATSCluster(t)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.clientURL()
	}
	natsBlock := "nats " + strings.Join(urls, " ") + " {\n\t\t\treplicas 3\n\t\t\tstart_timeout " + clusterStartTimeout + "\n\t\t}"

	rc := newReceiver(t, func(int, delivery) int {
		time.Sleep(5 * time.Millisecond) // keeps deliveries pending while the load runs
		return http.StatusNoContent
	})
	a := newClusterSite(t, rc.URL, natsBlock)
	b := newClusterSite(t, rc.URL, natsBlock)
	startAll(t, []*clusterSite{a, b})
	if got := metricValue(t, a.Admin, "caddy_webhooks_broker_connected"); got != 1 {
		t.Errorf("caddy_webhooks_broker_connected = %v, expected 1", got)
	}

	// The load runs in three parts. One NATS node is killed as the second
	// starts. Instance b gets half of the first two parts and is killed
	// during the third, once it has stored its share, while its
	// deliveries are still pending.
	keys := orderKeys("load", 2000)
	parts := [][]string{keys[:700], keys[700:1400], keys[1400:]}
	alternate := func(i int) *clusterSite {
		if i%2 == 1 {
			return b
		}
		return a
	}
	result := new(loadResult)
	sendKeys(t, parts[0], 16, alternate, result)
	go nodes[2].stop(syscall.SIGKILL)
	sendKeys(t, parts[1], 16, alternate, result)

	bKilled := make(chan struct{})
	go func() {
		defer close(bKilled)
		waitPublished(t, b, (len(parts[0])+len(parts[1]))/2)
		b.proc.kill()
	}()
	sendKeys(t, parts[2], 16, func(int) *clusterSite { return a }, result)
	<-bKilled
	t.Logf("load: %d requests, %d failed, slowest %s", result.sent.Load(), result.failures.Load(), time.Duration(result.maxDelay.Load()))
	<-nodes[2].done
	nodes[2].start()

	// The consumer's ack wait (timeout plus 30s) brings back what b had
	// fetched but not delivered.
	waitAllDelivered(t, rc, keys, 150*time.Second)

	// The whole cluster is unreachable for 10s: requests keep succeeding
	// and their events are published once it returns.
	for _, n := range nodes {
		n.stop(syscall.SIGTERM)
	}
	outageKeys := orderKeys("outage", 100)
	outage := new(loadResult)
	outageStart := time.Now()
	sendKeys(t, outageKeys, 4, func(int) *clusterSite {
		time.Sleep(300 * time.Millisecond) // spreads the requests over the outage
		return a
	}, outage)
	if got := metricValue(t, a.Admin, "caddy_webhooks_broker_connected"); got != 0 {
		t.Errorf("caddy_webhooks_broker_connected = %v during the outage, expected 0", got)
	}
	time.Sleep(max(0, 10*time.Second-time.Since(outageStart)))
	t.Logf("during the outage: %d requests, %d failed, slowest %s", outage.sent.Load(), outage.failures.Load(), time.Duration(outage.maxDelay.Load()))
	for _, n := range nodes {
		n.start()
	}
	waitAllDelivered(t, rc, outageKeys, 90*time.Second)
}

func TestEmbeddedClusterSurvivesRestart(t *testing.T) {
	caddyPath(t)
	clusterPorts := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, port := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", port))
	}
	rc := newReceiver(t, func(int, delivery) int {
		time.Sleep(5 * time.Millisecond)
		return http.StatusNoContent
	})
	// The routes are authenticated and use TLS with a certificate per
	// instance.
	ca := testpki.NewCA(t)
	sites := make([]*clusterSite, 3)
	for i, port := range clusterPorts {
		_, certFile, keyFile := ca.Issue(t, testpki.Options{
			CommonName: fmt.Sprintf("caddy-%d", i),
			IPs:        testpki.Loopback,
			Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		})
		block := fmt.Sprintf("nats embedded {\n\t\t\treplicas 3\n\t\t\tstart_timeout %s\n\t\t\tcluster webhooks-test {\n\t\t\t\tlisten 127.0.0.1:%d\n\t\t\t\troutes %s\n\t\t\t\tuser webhooks-test\n\t\t\t\tpassword test-route-secret\n\t\t\t\ttls {\n\t\t\t\t\tca %s\n\t\t\t\t\tcertificate %s %s\n\t\t\t\t}\n\t\t\t}\n\t\t}",
			clusterStartTimeout, port, strings.Join(routes, " "), ca.PEMFile, certFile, keyFile)
		sites[i] = newClusterSite(t, rc.URL, block)
	}
	startAll(t, sites)
	c := sites[2]
	started := c.proc.waitLog(time.Second, "embedded NATS server started")
	firstName := started["server_name"]
	if started["routes_authenticated"] != true {
		t.Errorf("started log = %v, want routes_authenticated", started)
	}
	if started["routes_tls"] != true {
		t.Errorf("started log = %v, want routes_tls", started)
	}
	for _, s := range sites {
		for _, line := range s.proc.logs.snapshot() {
			if strings.Contains(line, "test-route-secret") {
				t.Errorf("Caddy log line contains the route password: %s", line)
			}
		}
	}

	// c gets a third of the first half of the load, is killed once it has
	// stored its share, and is restarted during the last quarter.
	keys := orderKeys("embedded", 2000)
	parts := [][]string{keys[:1000], keys[1000:1500], keys[1500:]}
	result := new(loadResult)
	sendKeys(t, parts[0], 16, func(i int) *clusterSite { return sites[i%3] }, result)

	cKilled := make(chan struct{})
	go func() {
		defer close(cKilled)
		waitPublished(t, c, len(parts[0])/3)
		c.proc.kill()
	}()
	sendKeys(t, parts[1], 16, func(i int) *clusterSite { return sites[i%2] }, result)
	<-cKilled

	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		c.start(t)
	}()
	sendKeys(t, parts[2], 16, func(i int) *clusterSite { return sites[i%2] }, result)
	<-restarted
	t.Logf("load: %d requests, %d failed, slowest %s", result.sent.Load(), result.failures.Load(), time.Duration(result.maxDelay.Load()))

	secondName := c.proc.waitLog(time.Second, "embedded NATS server started")["server_name"]
	if firstName == nil || firstName != secondName {
		t.Errorf("server name after restart = %v, expected the first run's %v", secondName, firstName)
	}
	// The restarted instance publishes and delivers again.
	after := orderKeys("rejoined", 30)
	sendKeys(t, after, 4, func(int) *clusterSite { return c }, new(loadResult))
	waitAllDelivered(t, rc, append(keys, after...), 150*time.Second)
}
