package reference

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	webhooks "github.com/caddy-webhooks/caddy-webhooks"
	"github.com/caddy-webhooks/caddy-webhooks/alerts"
	"github.com/caddy-webhooks/caddy-webhooks/capture"
	"github.com/caddy-webhooks/caddy-webhooks/delivery"
	"github.com/caddy-webhooks/caddy-webhooks/delivery/email"
	"github.com/caddy-webhooks/caddy-webhooks/emitter"
)

// referencePath is the configuration reference that the tests check.
const referencePath = "docs/reference.md"

// Section titles of docs/reference.md, without backquotes.
const (
	sectionHandler   = "The webhooks handler directive"
	sectionEvent     = "event"
	sectionCapture   = "capture"
	sectionPayload   = "payload"
	sectionGlobal    = "The webhooks global option"
	sectionNATS      = "nats"
	sectionRetention = "retention"
	sectionEndpoint  = "endpoint"
	sectionEmail     = "email"
	sectionNotify    = "notify"
	sectionSMTP      = "smtp"
	sectionAlerts    = "alerts"
)

// destinationSections document the settings that webhook, e-mail and chat
// destinations share, each in one of them.
var destinationSections = []string{sectionEndpoint, sectionEmail, sectionNotify}

// typeSections maps every config struct reachable from the app and the
// handler to the sections that document its JSON fields. A field must be
// in the settings table of one of them.
var typeSections = map[reflect.Type][]string{
	reflect.TypeFor[webhooks.App]():               {sectionGlobal},
	reflect.TypeFor[emitter.Config]():             {sectionNATS},
	reflect.TypeFor[emitter.Cluster]():            {sectionNATS},
	reflect.TypeFor[emitter.ClientTLS]():          {sectionNATS},
	reflect.TypeFor[emitter.RouteTLS]():           {sectionNATS},
	reflect.TypeFor[emitter.Retention]():          {sectionRetention},
	reflect.TypeFor[delivery.Endpoint]():          destinationSections,
	reflect.TypeFor[delivery.TLS]():               {sectionEndpoint},
	reflect.TypeFor[delivery.ClientCertificate](): {sectionEndpoint},
	reflect.TypeFor[delivery.Email]():             {sectionEmail},
	reflect.TypeFor[delivery.SMTP]():              {sectionSMTP},
	reflect.TypeFor[alerts.Config]():              {sectionAlerts},
	reflect.TypeFor[webhooks.Handler]():           {sectionHandler},
	reflect.TypeFor[webhooks.Rule]():              {sectionEvent, sectionPayload},
	reflect.TypeFor[caddyhttp.ResponseMatcher]():  {sectionEvent},
	reflect.TypeFor[webhooks.Capture]():           {sectionCapture},
}

// parserDirs are the directories, relative to the repository root, whose
// Go files hold the Caddyfile parsers.
var parserDirs = []string{".", "caddyfile"}

// parserSections maps every subdirective switch of the Caddyfile parsers,
// as "<function>/<switch tag>", to the sections that document its cases.
var parserSections = map[string][]string{
	"UnmarshalCaddyfile/d.Val()": {sectionHandler},
	"parseBlockLine/name":        {sectionEvent, sectionPayload},
	"parseCapture/d.Val()":       {sectionCapture},
	"parseCapture/item":          {sectionCapture},
	"ParseOptions/d.Val()":       {sectionGlobal},
	"parseGlobalGuard/name":      {sectionGlobal},
	"parseNATSSetting/d.Val()":   {sectionNATS},
	"parseCluster/d.Val()":       {sectionNATS},
	"parseNATSTLS/d.Val()":       {sectionNATS},
	"parseRouteTLS/d.Val()":      {sectionNATS},
	"parseRetention/d.Val()":     {sectionRetention},
	"parseDestination/kind":      {sectionGlobal},
	"parseDestination/name":      destinationSections,
	"parseEmailLine/name":        {sectionEmail},
	"parseTLS/d.Val()":           {sectionEndpoint},
	"parseSMTP/name":             {sectionSMTP},
	"parseAlerts/name":           {sectionAlerts},
}

// Names that the tables may use besides the parsed ones: the directive
// itself, and the JSON field that names a Caddy handler module.
var (
	extraCaddyfileNames = []string{"webhooks"}
	extraJSONNames      = []string{"handler"}
)

// requirement is one name that the reference must document.
type requirement struct {
	name     string
	column   string   // "JSON" or "Caddyfile"
	sections []string // the name must be in a table row of one of them
	source   string   // where the name comes from, for messages
}

// jsonRequirements walks the JSON fields of the config types by
// reflection, from the app and the handler down through every struct they
// reach. A struct without an entry in typeSections is an error, so a new
// config type cannot go undocumented.
func jsonRequirements() ([]requirement, error) {
	var reqs []requirement
	seen := make(map[reflect.Type]bool)
	var walk func(t reflect.Type) error
	walk = func(t reflect.Type) error {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return nil
		}
		seen[t] = true
		sections, ok := typeSections[t]
		if !ok {
			return fmt.Errorf("config type %s has no section in typeSections: document its fields in %s and add it", t, referencePath)
		}
		for i := range t.NumField() {
			field := t.Field(i)
			name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
			if !field.IsExported() || name == "-" || name == "" {
				continue
			}
			reqs = append(reqs, requirement{name: name, column: "JSON", sections: sections, source: t.String() + "." + field.Name})
			if err := walk(field.Type); err != nil {
				return err
			}
		}
		return nil
	}
	for _, root := range []reflect.Type{reflect.TypeFor[webhooks.App](), reflect.TypeFor[webhooks.Handler]()} {
		if err := walk(root); err != nil {
			return nil, err
		}
	}
	return reqs, nil
}

// parserSwitch is the string cases of one subdirective switch.
type parserSwitch struct {
	key   string // "<function>/<switch tag>"
	file  string
	names []string
}

// parserSwitches finds the subdirective switches of the Caddyfile parsers
// with go/ast: switches on d.Val(), or on a variable assigned from d.Val()
// in the same function, and comparisons of d.Val() with a string. The
// string literals of their cases are the subdirective names.
func parserSwitches() ([]parserSwitch, error) {
	var switches []parserSwitch
	fset := token.NewFileSet()
	for _, dir := range parserDirs {
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
			rel := filepath.ToSlash(filepath.Join(dir, filepath.Base(path)))
			for _, decl := range file.Decls {
				if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
					switches = append(switches, funcSwitches(fn, rel)...)
				}
			}
		}
	}
	return switches, nil
}

// isValCall reports whether e is the call d.Val() on a Caddyfile dispenser
// named d.
func isValCall(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Val" {
		return false
	}
	recv, ok := sel.X.(*ast.Ident)
	return ok && recv.Name == "d"
}

// stringLiteral returns the value of a string literal expression.
func stringLiteral(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// funcSwitches returns the subdirective switches of one function.
func funcSwitches(fn *ast.FuncDecl, file string) []parserSwitch {
	fromVal := make(map[string]bool) // variables assigned from d.Val()
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		if assign, ok := n.(*ast.AssignStmt); ok && len(assign.Lhs) == len(assign.Rhs) {
			for i, rhs := range assign.Rhs {
				if id, ok := assign.Lhs[i].(*ast.Ident); ok && isValCall(rhs) {
					fromVal[id.Name] = true
				}
			}
		}
		return true
	})

	byKey := make(map[string]*parserSwitch)
	add := func(tag, name string) {
		key := fn.Name.Name + "/" + tag
		if byKey[key] == nil {
			byKey[key] = &parserSwitch{key: key, file: file}
		}
		byKey[key].names = append(byKey[key].names, name)
	}
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SwitchStmt:
			tag := ""
			if isValCall(n.Tag) {
				tag = "d.Val()"
			} else if id, ok := n.Tag.(*ast.Ident); ok && fromVal[id.Name] {
				tag = id.Name
			}
			if tag == "" {
				return true
			}
			for _, stmt := range n.Body.List {
				for _, e := range stmt.(*ast.CaseClause).List {
					if s, ok := stringLiteral(e); ok {
						add(tag, s)
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
				if s, ok := stringLiteral(pair[1]); ok && isValCall(pair[0]) {
					add("d.Val()", s)
				}
			}
		}
		return true
	})

	var out []parserSwitch
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		out = append(out, *byKey[key])
	}
	return out
}

// caddyfileRequirements turns the parser switches into requirements. A
// switch without an entry in parserSections is an error, and so is an
// entry whose switch no longer exists.
func caddyfileRequirements(switches []parserSwitch) ([]requirement, error) {
	var reqs []requirement
	found := make(map[string]bool)
	for _, sw := range switches {
		sections, ok := parserSections[sw.key]
		if !ok {
			return nil, fmt.Errorf("subdirective switch %s in %s has no section in parserSections: document its cases in %s and add it", sw.key, sw.file, referencePath)
		}
		found[sw.key] = true
		for _, name := range sw.names {
			reqs = append(reqs, requirement{name: name, column: "Caddyfile", sections: sections, source: sw.file + " " + sw.key})
		}
	}
	for key := range parserSections {
		if !found[key] {
			return nil, fmt.Errorf("parserSections lists %s, but no parser has that switch any more: remove or rename the entry", key)
		}
	}
	return reqs, nil
}

// configRequirements returns every JSON field and Caddyfile subdirective
// that the reference must document.
func configRequirements(t *testing.T) []requirement {
	t.Helper()
	jsonReqs, err := jsonRequirements()
	if err != nil {
		t.Fatal(err)
	}
	switches, err := parserSwitches()
	if err != nil {
		t.Fatal(err)
	}
	caddyfileReqs, err := caddyfileRequirements(switches)
	if err != nil {
		t.Fatal(err)
	}
	return append(jsonReqs, caddyfileReqs...)
}

// checkReference returns the problems of the reference. It reports a
// required name missing from the tables of its sections, a section without
// a settings table, and a row without a default. It also reports a name in
// a table that no config type or parser has.
func checkReference(doc string, reqs []requirement) []string {
	sections, err := parseSections(doc)
	if err != nil {
		return []string{err.Error()}
	}

	var problems []string
	documented := map[string]map[string]map[string]bool{"JSON": {}, "Caddyfile": {}} // column → section → names
	for title, s := range sections {
		documented["JSON"][title] = make(map[string]bool)
		documented["Caddyfile"][title] = make(map[string]bool)
		for _, row := range settingRows(s) {
			for _, name := range jsonNames(row.json) {
				documented["JSON"][title][name] = true
			}
			for _, name := range caddyfileNames(row.caddyfile) {
				documented["Caddyfile"][title][name] = true
			}
			if row.defaultValue == "" {
				problems = append(problems, fmt.Sprintf("section %q: row %s has no default: write the default, or — or required", title, row.line))
			}
		}
	}

	known := map[string]map[string]bool{"JSON": {}, "Caddyfile": {}}
	required := make(map[string]bool)
	for _, req := range reqs {
		known[req.column][req.name] = true
		for _, title := range req.sections {
			required[title] = true
		}
		if !documentedIn(documented[req.column], req.name, req.sections) {
			problems = append(problems, fmt.Sprintf("%s name %q (from %s) is not in a table row of section %s",
				req.column, req.name, req.source, quoteAll(req.sections)))
		}
	}
	for title := range required {
		if s, ok := sections[title]; !ok || len(settingRows(s)) == 0 {
			problems = append(problems, fmt.Sprintf("section %q has no table with the columns Caddyfile, JSON and Default", title))
		}
	}
	problems = append(problems, unknownNames(documented, known)...)
	sort.Strings(problems)
	return problems
}

// unknownNames lists names in the tables that no config type or parser has,
// which are left over from removed or renamed settings.
func unknownNames(documented map[string]map[string]map[string]bool, known map[string]map[string]bool) []string {
	for _, name := range extraCaddyfileNames {
		known["Caddyfile"][name] = true
	}
	for _, name := range extraJSONNames {
		known["JSON"][name] = true
	}
	var problems []string
	for column, bySection := range documented {
		for title, names := range bySection {
			for name := range names {
				if !known[column][name] {
					problems = append(problems, fmt.Sprintf("section %q documents the %s name %q, which no config type or parser has: remove or correct it", title, column, name))
				}
			}
		}
	}
	return problems
}

func documentedIn(bySection map[string]map[string]bool, name string, sections []string) bool {
	for _, title := range sections {
		if bySection[title][name] {
			return true
		}
	}
	return false
}

func quoteAll(titles []string) string {
	quoted := make([]string, len(titles))
	for i, title := range titles {
		quoted[i] = strconv.Quote(title)
	}
	return strings.Join(quoted, " or ")
}

func TestReferenceDocumentsConfig(t *testing.T) {
	doc := readRepoFile(t, referencePath)
	reqs := configRequirements(t)

	// Guard against an extraction that finds too little to check.
	for _, want := range []requirement{
		{name: "store_dir", column: "JSON"},
		{name: "status_code", column: "JSON"},
		{name: "max_body", column: "Caddyfile"},
		{name: "client_certificate", column: "Caddyfile"},
		{name: "event", column: "Caddyfile"},
	} {
		if !slices.ContainsFunc(reqs, func(r requirement) bool { return r.name == want.name && r.column == want.column }) {
			t.Errorf("the requirements lack the %s name %q: the extraction from the code is broken", want.column, want.name)
		}
	}

	for _, problem := range checkReference(doc, reqs) {
		t.Error(problem)
	}
}

// removeRow returns doc without the first settings-table row in the
// section with the title whose first cell starts with the code span
// prefix.
func removeRow(t *testing.T, doc, title, prefix string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	inSection := false
	for i, line := range lines {
		if m := headingPattern.FindStringSubmatch(line); m != nil {
			inSection = strings.ReplaceAll(m[2], "`", "") == title
			continue
		}
		if inSection && strings.HasPrefix(line, "| `"+prefix) {
			return strings.Join(slices.Delete(lines, i, i+1), "\n")
		}
	}
	t.Fatalf("no row starting with `%s in section %q", prefix, title)
	return ""
}

func TestCheckReportsRemovedRow(t *testing.T) {
	doc := readRepoFile(t, referencePath)
	reqs := configRequirements(t)

	tests := []struct {
		section, row string
		wantMissing  []string // the names that the check must report
	}{
		{sectionNATS, "queue_size", []string{`JSON name "queue_size"`, `Caddyfile name "queue_size"`}},
		{sectionEndpoint, "follow_redirects", []string{`JSON name "follow_redirects"`, `Caddyfile name "follow_redirects"`}},
		{sectionEndpoint, "tls` › `client_certificate", []string{`JSON name "certificate"`, `Caddyfile name "client_certificate"`}},
		{sectionCapture, "max_body", []string{`JSON name "max_body"`, `Caddyfile name "max_body"`}},
		{sectionEvent, "description", []string{`JSON name "description"`, `Caddyfile name "description"`}},
		{sectionEmail, "html", []string{`JSON name "html"`, `Caddyfile name "html"`}},
		{sectionSMTP, "from", []string{`JSON name "from"`, `Caddyfile name "from"`}},
		{sectionAlerts, "interval", []string{`JSON name "interval"`, `Caddyfile name "interval"`}},
		{sectionGlobal, "https_only", []string{`JSON name "https_only"`}},
		{sectionHandler, "event", []string{`JSON name "rules"`, `Caddyfile name "event"`}},
	}
	for _, tt := range tests {
		t.Run(tt.section+"/"+tt.row, func(t *testing.T) {
			problems := strings.Join(checkReference(removeRow(t, doc, tt.section, tt.row), reqs), "\n")
			for _, want := range tt.wantMissing {
				if !strings.Contains(problems, want+" (from") {
					t.Errorf("the check did not report %s missing; it reported:\n%s", want, problems)
				}
			}
		})
	}
}

func TestCheckReportsUnknownName(t *testing.T) {
	doc := readRepoFile(t, referencePath)
	reqs := configRequirements(t)

	stale := "| `flush_interval <duration>` | `flush_interval` | `1s` | A setting that does not exist. |\n"
	anchor := "| `queue_size <count>` |"
	if !strings.Contains(doc, anchor) {
		t.Fatalf("%s has no row starting with %s", referencePath, anchor)
	}
	problems := strings.Join(checkReference(strings.Replace(doc, anchor, stale+anchor, 1), reqs), "\n")
	for _, want := range []string{`the JSON name "flush_interval"`, `the Caddyfile name "flush_interval"`} {
		if !strings.Contains(problems, want) {
			t.Errorf("the check did not report %s; it reported:\n%s", want, problems)
		}
	}
}

// formatDuration writes d as the reference does: in whole days from two
// days on, and otherwise in the largest of hours, minutes and seconds that
// divides it, so that 24 hours is 24h.
func formatDuration(d time.Duration) string {
	for _, unit := range []struct {
		size   time.Duration
		suffix string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%unit.size == 0 && (unit.suffix != "d" || d > 24*time.Hour) {
			return fmt.Sprintf("%d%s", d/unit.size, unit.suffix)
		}
	}
	return d.String()
}

func TestReferenceDefaults(t *testing.T) {
	sections, err := parseSections(readRepoFile(t, referencePath))
	if err != nil {
		t.Fatal(err)
	}
	var retry []string
	for _, d := range delivery.DefaultRetry() {
		retry = append(retry, formatDuration(d))
	}

	tests := []struct {
		section, field, want string
	}{
		{sectionNATS, "queue_size", strconv.Itoa(emitter.DefaultQueueSize)},
		{sectionNATS, "start_timeout", formatDuration(emitter.DefaultStartTimeout)},
		{sectionNATS, "drain_timeout", formatDuration(emitter.DefaultDrainTimeout)},
		{sectionNATS, "retention", formatDuration(emitter.DefaultEventsMaxAge)},
		{sectionRetention, "events", formatDuration(emitter.DefaultEventsMaxAge)},
		{sectionRetention, "attempts", formatDuration(emitter.DefaultAttemptsMaxAge)},
		{sectionEndpoint, "timeout", formatDuration(delivery.DefaultTimeout)},
		{sectionEndpoint, "retry", strings.Join(retry, " ")},
		{sectionEndpoint, "concurrency", strconv.Itoa(delivery.DefaultConcurrency)},
		{sectionEndpoint, "retry_after_max", formatDuration(delivery.DefaultRetryAfterMax)},
		{sectionEndpoint, "disable_after", formatDuration(delivery.DefaultDisableAfter)},
		{sectionCapture, "max_body", strconv.Itoa(capture.DefaultMaxBody)},
		{sectionSMTP, "timeout", formatDuration(email.DefaultTimeout)},
		{sectionAlerts, "interval", formatDuration(alerts.DefaultInterval)},
	}
	for _, tt := range tests {
		s := sections[tt.section]
		if s == nil {
			t.Errorf("%s has no section %q", referencePath, tt.section)
			continue
		}
		i := slices.IndexFunc(settingRows(s), func(row settingRow) bool { return slices.Contains(jsonNames(row.json), tt.field) })
		if i < 0 {
			t.Errorf("section %q has no row for %q", tt.section, tt.field)
			continue
		}
		if row := settingRows(s)[i]; !strings.Contains(row.defaultValue, "`"+tt.want+"`") {
			t.Errorf("section %q, %q: default is %q, want it to state `%s` as the code does", tt.section, tt.field, row.defaultValue, tt.want)
		}
	}
}
