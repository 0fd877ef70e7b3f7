package reference

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Paths of the dashboard and of the page that explains the metrics.
const (
	dashboardPath  = "docs/grafana-dashboard.json"
	operationsPath = "docs/operations.md"
)

// metricDirs are the directories whose Go files define the metrics.
var metricDirs = []string{".", "delivery", "emitter"}

// definedMetrics returns the names of the metrics that the code defines,
// found with go/ast: the Namespace, Subsystem and Name of prometheus
// CounterOpts, GaugeOpts and HistogramOpts literals, and the first argument
// of prometheus.NewDesc. The value is true for a histogram.
func definedMetrics() (map[string]bool, error) {
	metrics := make(map[string]bool)
	fset := token.NewFileSet()
	for _, dir := range metricDirs {
		paths, err := filepath.Glob(filepath.Join(repoRoot, dir, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return nil, fmt.Errorf("parsing %s: %w", path, err)
			}
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if kind := prometheusName(n.Type); strings.HasSuffix(kind, "Opts") {
						if name := optsMetricName(n); name != "" {
							metrics[name] = kind == "HistogramOpts"
						}
					}
				case *ast.CallExpr:
					if prometheusName(n.Fun) == "NewDesc" && len(n.Args) > 0 {
						if name, ok := stringLiteral(n.Args[0]); ok {
							metrics[name] = false
						}
					}
				}
				return true
			})
		}
	}
	return metrics, nil
}

// prometheusName returns Name for the expression prometheus.Name, and ""
// for others.
func prometheusName(e ast.Expr) string {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "prometheus" {
		return sel.Sel.Name
	}
	return ""
}

// optsMetricName joins the Namespace, Subsystem and Name fields of a
// metric options literal, or returns "" when Name is not a string literal.
func optsMetricName(lit *ast.CompositeLit) string {
	fields := make(map[string]string)
	for _, elt := range lit.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok {
			continue
		}
		if value, ok := stringLiteral(kv.Value); ok {
			fields[key.Name] = value
		}
	}
	if fields["Name"] == "" {
		return ""
	}
	var parts []string
	for _, part := range []string{fields["Namespace"], fields["Subsystem"], fields["Name"]} {
		if part != "" {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, "_")
}

// metricNamePattern matches the names of this plugin's metrics in PromQL.
var metricNamePattern = regexp.MustCompile(`caddy_webhooks_[a-z_]+`)

// queriedMetric returns the metric that a name in a query reads: the name,
// or for a histogram series such as <name>_bucket, the histogram's name.
// ok is false when the code defines no such metric.
func queriedMetric(name string, defined map[string]bool) (metric string, ok bool) {
	if _, found := defined[name]; found {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, cut := strings.CutSuffix(name, suffix); cut && defined[base] {
			return base, true
		}
	}
	return "", false
}

// dashboard is the part of a Grafana dashboard that the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal([]byte(readRepoFile(t, dashboardPath)), &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardPath, err)
	}
	return d
}

// checkBalanced returns an error when the brackets or double quotes of a
// PromQL expression do not pair up.
func checkBalanced(expr string) error {
	var open []rune
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case strings.ContainsRune("([{", r):
			open = append(open, r)
		case strings.ContainsRune(")]}", r):
			want := map[rune]rune{')': '(', ']': '[', '}': '{'}[r]
			if len(open) == 0 || open[len(open)-1] != want {
				return fmt.Errorf("unmatched %q", r)
			}
			open = open[:len(open)-1]
		}
	}
	if inString || len(open) > 0 {
		return fmt.Errorf("unclosed %q", string(open))
	}
	return nil
}

func TestDashboardIsValid(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard needs a uid, a title and a schemaVersion; got %q, %q, %d", d.UID, d.Title, d.SchemaVersion)
	}
	var variables []string
	for _, v := range d.Templating.List {
		variables = append(variables, v.Name)
	}
	if !slices.Contains(variables, "datasource") {
		t.Errorf("dashboard has no datasource variable, so it cannot be imported into another Grafana; variables: %v", variables)
	}

	ids := make(map[int]bool)
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Type == "" || p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d (%q) needs a title, a type and a gridPos with a width and height", p.ID, p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		refIDs := make(map[string]bool)
		for _, target := range p.Targets {
			queries++
			if target.RefID == "" || refIDs[target.RefID] {
				t.Errorf("panel %q: query %q needs a refId of its own", p.Title, target.Expr)
			}
			refIDs[target.RefID] = true
			if err := checkBalanced(target.Expr); err != nil {
				t.Errorf("panel %q: query %q: %v", p.Title, target.Expr, err)
			}
		}
	}
	if queries == 0 {
		t.Error("dashboard has no queries")
	}
}

// dashboardQueries returns every PromQL text of the dashboard: the panel
// queries and the variable queries.
func dashboardQueries(d dashboard) []string {
	var queries []string
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			queries = append(queries, target.Expr)
		}
	}
	for _, v := range d.Templating.List {
		queries = append(queries, string(v.Query))
	}
	return queries
}

func TestDashboardQueriesDefinedMetrics(t *testing.T) {
	defined, err := definedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 9 {
		t.Fatalf("found %d metrics in the code (%v): the extraction is broken", len(defined), defined)
	}

	queried := make(map[string]bool)
	for _, query := range dashboardQueries(loadDashboard(t)) {
		for _, name := range metricNamePattern.FindAllString(query, -1) {
			metric, ok := queriedMetric(name, defined)
			if !ok {
				t.Errorf("%s queries %s, which the code does not define: %q", dashboardPath, name, query)
				continue
			}
			queried[metric] = true
		}
	}
	for metric := range defined {
		if !queried[metric] {
			t.Errorf("metric %s has no panel in %s", metric, dashboardPath)
		}
	}
}

func TestOperationsExplainsMetrics(t *testing.T) {
	defined, err := definedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	doc := readRepoFile(t, operationsPath)
	for metric := range defined {
		if !strings.Contains(doc, "`"+metric+"`") {
			t.Errorf("%s does not explain the metric %s", operationsPath, metric)
		}
	}
	for _, name := range metricNamePattern.FindAllString(doc, -1) {
		if _, ok := queriedMetric(name, defined); !ok {
			t.Errorf("%s names %s, which the code does not define", operationsPath, name)
		}
	}
}

// alertRules is a Prometheus rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestOperationsAlertRules(t *testing.T) {
	var blocks []codeBlock
	for _, block := range codeBlocks(readRepoFile(t, operationsPath)) {
		if block.lang == "yaml" {
			blocks = append(blocks, block)
		}
	}
	if len(blocks) != 1 {
		t.Fatalf("%s has %d yaml blocks, want 1 with the alert rules", operationsPath, len(blocks))
	}

	var rules alertRules
	if err := yaml.Unmarshal([]byte(blocks[0].text), &rules); err != nil {
		t.Fatalf("the alert rules on line %d of %s are not valid YAML: %v", blocks[0].line, operationsPath, err)
	}
	count := 0
	for _, group := range rules.Groups {
		for _, rule := range group.Rules {
			count++
			if rule.Alert == "" || rule.Expr == "" || rule.Labels["severity"] == "" || rule.Annotations["summary"] == "" {
				t.Errorf("rule %q needs alert, expr, a severity label and a summary", rule.Alert)
			}
			if err := checkBalanced(rule.Expr); err != nil {
				t.Errorf("rule %q: expr %q: %v", rule.Alert, rule.Expr, err)
			}
			if _, err := time.ParseDuration(rule.For); rule.For != "" && err != nil {
				t.Errorf("rule %q: invalid for %q: %v", rule.Alert, rule.For, err)
			}
		}
	}
	if count == 0 {
		t.Errorf("the alert rules of %s have no rule", operationsPath)
	}
}

func TestQueriedMetric(t *testing.T) {
	defined := map[string]bool{"caddy_webhooks_x_seconds": true, "caddy_webhooks_y_total": false}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"caddy_webhooks_x_seconds_bucket", "caddy_webhooks_x_seconds", true},
		{"caddy_webhooks_x_seconds", "caddy_webhooks_x_seconds", true},
		{"caddy_webhooks_y_total", "caddy_webhooks_y_total", true},
		{"caddy_webhooks_y_total_bucket", "", false},
		{"caddy_webhooks_z_total", "", false},
	}
	for _, tt := range tests {
		got, ok := queriedMetric(tt.name, defined)
		if got != tt.want || ok != tt.ok {
			t.Errorf("queriedMetric(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckBalanced(t *testing.T) {
	for expr, ok := range map[string]bool{
		`sum by (le) (rate(x{a="("}[5m]))`: true,
		`sum(rate(x[5m])`:                  false,
		`x{a="b"]`:                         false,
		`x{a="b}`:                          false,
	} {
		if err := checkBalanced(expr); (err == nil) != ok {
			t.Errorf("checkBalanced(%q) = %v, want ok %v", expr, err, ok)
		}
	}
}
