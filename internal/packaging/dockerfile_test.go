package packaging

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// No Docker engine runs in the test environment, so these tests check
// xcaddy.Dockerfile by parsing it with BuildKit's own parser and comparing
// every instruction that matters against the repository.

// dockerfileName is the image definition at the repository root.
const dockerfileName = "xcaddy.Dockerfile"

// Versions and paths that the image definition must keep.
const (
	xcaddyPackage = "github.com/caddyserver/xcaddy/cmd/xcaddy"
	xcaddyVersion = "v0.4.5"
	caddyVersion  = "v2.11.9"
	goImageTag    = "1.26"
	demoCaddyfile = "testdata/demo.Caddyfile"
)

// stage is one FROM of the Dockerfile with the instructions after it.
type stage struct {
	index        int
	from         *parser.Node
	image        string
	name         string // "" for a stage without AS
	instructions []*parser.Node
}

// dockerfile is a parsed Dockerfile, split into its stages.
type dockerfile struct {
	contextDir string // the build context, where COPY sources are looked up
	stages     []*stage
	warnings   []parser.Warning
}

// parseDockerfile parses text as BuildKit does and splits it into stages.
func parseDockerfile(t *testing.T, contextDir, text string) *dockerfile {
	t.Helper()
	result, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing %s: %v", dockerfileName, err)
	}
	df := &dockerfile{contextDir: contextDir, warnings: result.Warnings}
	for _, node := range result.AST.Children {
		if is(node, "FROM") {
			words := args(node)
			s := &stage{index: len(df.stages), from: node}
			if len(words) > 0 {
				s.image = words[0]
			}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				s.name = words[2]
			}
			df.stages = append(df.stages, s)
			continue
		}
		if len(df.stages) == 0 {
			continue // ARG before the first FROM
		}
		last := df.stages[len(df.stages)-1]
		last.instructions = append(last.instructions, node)
	}
	if len(df.stages) == 0 {
		t.Fatalf("%s has no FROM instruction", dockerfileName)
	}
	return df
}

func (df *dockerfile) final() *stage {
	return df.stages[len(df.stages)-1]
}

// stageByRef returns the stage that a COPY --from value names, by name or
// by index.
func (df *dockerfile) stageByRef(ref string) *stage {
	for _, s := range df.stages {
		if s.name != "" && strings.EqualFold(s.name, ref) || strconv.Itoa(s.index) == ref {
			return s
		}
	}
	return nil
}

// is reports whether node is the instruction name.
func is(node *parser.Node, name string) bool {
	return strings.EqualFold(node.Value, name)
}

// args returns the arguments of an instruction as the parser split them.
func args(node *parser.Node) []string {
	var words []string
	for next := node.Next; next != nil; next = next.Next {
		words = append(words, next.Value)
	}
	return words
}

// flag returns the value of an instruction flag such as --from=build.
func flag(node *parser.Node, name string) (string, bool) {
	for _, f := range node.Flags {
		if value, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return value, true
		}
	}
	return "", false
}

// at names the line of node for an error message.
func at(node *parser.Node) string {
	return fmt.Sprintf("%s line %d", dockerfileName, node.StartLine)
}

// envValues returns the variables that ARG and ENV instructions of s set
// before the instruction before, with their values.
func (s *stage) envValues(before *parser.Node) map[string]string {
	values := make(map[string]string)
	for _, node := range s.instructions {
		if node == before {
			break
		}
		words := args(node)
		switch {
		case is(node, "ARG"):
			for _, word := range words {
				name, value, _ := strings.Cut(word, "=")
				values[name] = value
			}
		case is(node, "ENV"):
			// The parser stores ENV as triplets of name, value and "=".
			for i := 0; i+1 < len(words); i += 3 {
				values[words[i]] = words[i+1]
			}
		}
	}
	return values
}

// xcaddyBuild is the `xcaddy build` command of the build stage.
type xcaddyBuild struct {
	stage   *stage
	run     *parser.Node
	version string   // the Caddy version argument, "" when absent
	with    []string // the --with arguments
	output  string   // the --output argument
}

// findXcaddyBuild returns the first RUN that calls `xcaddy build`.
func (df *dockerfile) findXcaddyBuild() (*xcaddyBuild, error) {
	for _, s := range df.stages {
		for _, node := range s.instructions {
			if !is(node, "RUN") {
				continue
			}
			words := strings.Fields(strings.Join(args(node), " "))
			for i := 0; i+1 < len(words); i++ {
				if path.Base(words[i]) == "xcaddy" && words[i+1] == "build" {
					return parseXcaddyBuild(s, node, words[i+2:]), nil
				}
			}
		}
	}
	return nil, fmt.Errorf("%s has no RUN with `xcaddy build`: add one to the build stage", dockerfileName)
}

// parseXcaddyBuild reads the arguments of `xcaddy build` up to the end of
// the shell command.
func parseXcaddyBuild(s *stage, run *parser.Node, words []string) *xcaddyBuild {
	b := &xcaddyBuild{stage: s, run: run}
	for i := 0; i < len(words); i++ {
		word := words[i]
		if word == "&&" || word == ";" || word == "||" || word == "|" {
			break
		}
		name, value, hasValue := strings.Cut(word, "=")
		if !strings.HasPrefix(word, "--") {
			b.version = word
			continue
		}
		if !hasValue && i+1 < len(words) {
			i++
			value = words[i]
		}
		switch name {
		case "--with":
			b.with = append(b.with, value)
		case "--output":
			b.output = value
		}
	}
	return b
}

// copySources returns the sources of a COPY or ADD and its destination.
func copySources(node *parser.Node) (sources []string, dest string) {
	words := args(node)
	if len(words) < 2 {
		return nil, ""
	}
	return words[:len(words)-1], words[len(words)-1]
}

// copyDestination resolves dest against the working directory, as COPY does.
func copyDestination(workdir, dest string) string {
	if path.IsAbs(dest) {
		return path.Clean(dest)
	}
	return path.Join(workdir, dest)
}

// checkStages requires a named build stage before the runtime stage.
func checkStages(df *dockerfile) error {
	if len(df.stages) < 2 {
		return fmt.Errorf("%s: %s has one stage: build Caddy in a stage `FROM golang:%s-... AS build` and copy the binary into a runtime stage",
			at(df.stages[0].from), dockerfileName, goImageTag)
	}
	for _, s := range df.stages[:len(df.stages)-1] {
		if s.name == "" {
			return fmt.Errorf("%s: stage FROM %s has no name: add `AS build` so the runtime stage can copy from it by name", at(s.from), s.image)
		}
	}
	return nil
}

// checkBaseImagesPinned requires a tag other than latest, or a digest, on
// every base image that is not an earlier stage.
func checkBaseImagesPinned(df *dockerfile) error {
	for _, s := range df.stages {
		if earlier := df.stageByRef(s.image); earlier != nil && earlier.index < s.index {
			continue
		}
		if strings.Contains(s.image, "@sha256:") {
			continue
		}
		name := s.image[strings.LastIndex(s.image, "/")+1:]
		_, tag, hasTag := strings.Cut(name, ":")
		if !hasTag || tag == "" || tag == "latest" {
			return fmt.Errorf("%s: base image %q has no pinned tag: name a version, such as alpine:3.23", at(s.from), s.image)
		}
	}
	return nil
}

// checkGoImage requires the official Go image of Go 1.26 for the build.
func checkGoImage(df *dockerfile) error {
	b, err := df.findXcaddyBuild()
	if err != nil {
		return err
	}
	image := strings.TrimPrefix(b.stage.image, "docker.io/library/")
	tag, ok := strings.CutPrefix(image, "golang:")
	if !ok || !(tag == goImageTag || strings.HasPrefix(tag, goImageTag+"-") || strings.HasPrefix(tag, goImageTag+".")) {
		return fmt.Errorf("%s: the build stage's image is %q: use the official Go %s image, such as golang:%s-alpine3.23, because go.mod requires Go %s",
			at(b.stage.from), b.stage.image, goImageTag, goImageTag, goImageTag)
	}
	return nil
}

// checkXcaddyPinned requires `go install` of xcaddy at xcaddyVersion in the
// build stage.
func checkXcaddyPinned(df *dockerfile) error {
	b, err := df.findXcaddyBuild()
	if err != nil {
		return err
	}
	for _, node := range b.stage.instructions {
		if !is(node, "RUN") {
			continue
		}
		for _, word := range strings.Fields(strings.Join(args(node), " ")) {
			pkg, version, _ := strings.Cut(word, "@")
			if pkg != xcaddyPackage {
				continue
			}
			if version != xcaddyVersion {
				return fmt.Errorf("%s: installs %s@%s: pin it with `go install %s@%s`", at(node), pkg, version, xcaddyPackage, xcaddyVersion)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: the build stage does not install xcaddy: add `RUN go install %s@%s` after this line", at(b.stage.from), xcaddyPackage, xcaddyVersion)
}

// checkXcaddyBuildsCheckout requires `--with <module>=<dir>`, where dir is
// the directory that a `COPY .` of the build stage fills with the checkout.
func checkXcaddyBuildsCheckout(df *dockerfile) error {
	b, err := df.findXcaddyBuild()
	if err != nil {
		return err
	}
	var replacement string
	for _, with := range b.with {
		if dir, ok := strings.CutPrefix(with, modulePath+"="); ok {
			replacement = path.Clean(dir)
		}
	}
	if replacement == "" {
		return fmt.Errorf("%s: xcaddy build has no `--with %s=<dir>`: build the plugin from the copied checkout, such as `--with %s=/src`", at(b.run), modulePath, modulePath)
	}

	workdir := "/"
	for _, node := range b.stage.instructions {
		if node == b.run {
			break
		}
		switch {
		case is(node, "WORKDIR") && len(args(node)) > 0:
			workdir = copyDestination(workdir, args(node)[0])
		case is(node, "COPY"):
			sources, dest := copySources(node)
			if _, fromStage := flag(node, "from"); !fromStage && slices.ContainsFunc(sources, isContextRoot) && copyDestination(workdir, dest) == replacement {
				return nil
			}
		}
	}
	return fmt.Errorf("%s: xcaddy builds the plugin from %s, but no `COPY . %s` before this line copies the build context there", at(b.run), replacement, replacement)
}

func isContextRoot(source string) bool {
	return source == "." || source == "./"
}

// checkCaddyVersion requires the build to use caddyVersion, through
// xcaddy's version argument or the CADDY_VERSION variable that xcaddy
// reads.
func checkCaddyVersion(df *dockerfile) error {
	b, err := df.findXcaddyBuild()
	if err != nil {
		return err
	}
	if b.version != "" {
		if b.version != caddyVersion {
			return fmt.Errorf("%s: xcaddy builds Caddy %s: build %s, the version that go.mod requires", at(b.run), b.version, caddyVersion)
		}
		return nil
	}
	version, ok := b.stage.envValues(b.run)["CADDY_VERSION"]
	if !ok {
		return fmt.Errorf("%s: xcaddy build gets no Caddy version, so it builds the latest release: add `ARG CADDY_VERSION=%s` before this line", at(b.run), caddyVersion)
	}
	if version != caddyVersion {
		return fmt.Errorf("%s: CADDY_VERSION is %q before this line: set it to %s, the version that go.mod requires", at(b.run), version, caddyVersion)
	}
	return nil
}

// checkProxyFallback requires a GOPROXY that ends in "|off" for the xcaddy
// build. xcaddy runs `go get` for the plugin despite the replacement, and
// Go takes the replacement only when the version lookup ends in "not
// found", which a proxy without the module path followed by `direct`
// without git does not give.
func checkProxyFallback(df *dockerfile) error {
	b, err := df.findXcaddyBuild()
	if err != nil {
		return err
	}
	proxy, ok := b.stage.envValues(b.run)["GOPROXY"]
	if !ok || !strings.HasSuffix(proxy, "|off") {
		return fmt.Errorf("%s: GOPROXY is %q before this line: add `ARG GOPROXY=https://proxy.golang.org|off` before it, so an unpublished plugin path builds from the checkout", at(b.run), proxy)
	}
	return nil
}

// pathDirs are the directories of PATH in the Alpine image, where CMD finds
// `caddy`.
var pathDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// checkBinaryCopied requires the final stage to copy xcaddy's output from
// the build stage to a PATH directory as `caddy`.
func checkBinaryCopied(df *dockerfile) error {
	b, err := df.findXcaddyBuild()
	if err != nil {
		return err
	}
	if b.output == "" {
		return fmt.Errorf("%s: xcaddy build has no --output: write the binary to a fixed path, such as --output /usr/bin/caddy", at(b.run))
	}
	final := df.final()
	for _, node := range final.instructions {
		ref, fromStage := flag(node, "from")
		if !is(node, "COPY") || !fromStage || df.stageByRef(ref) != b.stage {
			continue
		}
		sources, dest := copySources(node)
		if !slices.Contains(sources, b.output) {
			continue
		}
		dest = copyDestination("/", dest)
		if path.Base(dest) != "caddy" || !slices.Contains(pathDirs, path.Dir(dest)) {
			return fmt.Errorf("%s: copies the binary to %s, where CMD does not find `caddy`: copy it to /usr/bin/caddy", at(node), dest)
		}
		return nil
	}
	return fmt.Errorf("%s: the final stage does not copy %s from stage %q: add `COPY --from=%s %s /usr/bin/caddy` after this line",
		at(final.from), b.output, b.stage.name, b.stage.name, b.output)
}

// lastInstruction returns the last instruction name of s, or nil.
func (s *stage) lastInstruction(name string) *parser.Node {
	var found *parser.Node
	for _, node := range s.instructions {
		if is(node, name) {
			found = node
		}
	}
	return found
}

// checkNonRootUser requires the final stage to run as a numeric UID other
// than 0, which Kubernetes' runAsNonRoot can verify without /etc/passwd.
func checkNonRootUser(df *dockerfile) error {
	final := df.final()
	user := final.lastInstruction("USER")
	if user == nil || len(args(user)) == 0 {
		return fmt.Errorf("%s: the final stage has no USER, so Caddy runs as root: add `USER 10001` before CMD", at(final.from))
	}
	name, _, _ := strings.Cut(args(user)[0], ":")
	uid, err := strconv.Atoi(name)
	if err != nil {
		return fmt.Errorf("%s: USER %s is not a numeric UID: use a number such as 10001, so runAsNonRoot can check it", at(user), name)
	}
	if uid == 0 {
		return fmt.Errorf("%s: USER %s is root: use a UID other than 0, such as 10001", at(user), name)
	}
	return nil
}

// volumes returns the paths of the VOLUME instructions of s.
func (s *stage) volumes() []string {
	var paths []string
	for _, node := range s.instructions {
		if is(node, "VOLUME") {
			for _, p := range args(node) {
				paths = append(paths, path.Clean(p))
			}
		}
	}
	return paths
}

// checkDataDir requires /data as Caddy's data directory, which holds the
// embedded JetStream store, on a volume.
func checkDataDir(df *dockerfile) error {
	return checkXDGVolume(df, "XDG_DATA_HOME", "/data")
}

// checkConfigDir requires /config as Caddy's config directory on a volume.
func checkConfigDir(df *dockerfile) error {
	return checkXDGVolume(df, "XDG_CONFIG_HOME", "/config")
}

func checkXDGVolume(df *dockerfile, variable, dir string) error {
	final := df.final()
	if value := final.envValues(nil)[variable]; value != dir {
		return fmt.Errorf("%s: the final stage sets %s to %q: add `ENV %s=%s`, the directory of Caddy's official image", at(final.from), variable, value, variable, dir)
	}
	if !slices.Contains(final.volumes(), dir) {
		return fmt.Errorf("%s: the final stage declares no VOLUME %s: add it after the ENV %s line", at(final.from), dir, variable)
	}
	return nil
}

// checkDemoCaddyfile requires the demo config in /etc/caddy.
func checkDemoCaddyfile(df *dockerfile) error {
	final := df.final()
	for _, node := range final.instructions {
		if _, fromStage := flag(node, "from"); !is(node, "COPY") || fromStage {
			continue
		}
		sources, dest := copySources(node)
		if slices.Contains(sources, demoCaddyfile) && strings.HasPrefix(copyDestination("/", dest), "/etc/caddy/") {
			return nil
		}
	}
	return fmt.Errorf("%s: the final stage does not copy %s: add `COPY %s /etc/caddy/examples/demo.Caddyfile`", at(final.from), demoCaddyfile, demoCaddyfile)
}

// checkContextSources requires every COPY and ADD source from the build
// context to exist in the repository.
func checkContextSources(df *dockerfile) error {
	for _, s := range df.stages {
		for _, node := range s.instructions {
			if _, fromStage := flag(node, "from"); !(is(node, "COPY") || is(node, "ADD")) || fromStage {
				continue
			}
			sources, _ := copySources(node)
			for _, source := range sources {
				matches, err := filepath.Glob(filepath.Join(df.contextDir, filepath.FromSlash(source)))
				if err != nil || len(matches) == 0 {
					return fmt.Errorf("%s: source %q does not exist in the repository: fix the path, relative to the repository root", at(node), source)
				}
			}
		}
	}
	return nil
}

// checkCommand requires the final stage to start Caddy with
// /etc/caddy/Caddyfile, in exec form so Caddy receives the stop signal.
func checkCommand(df *dockerfile) error {
	want := []string{"caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"}
	final := df.final()
	if entrypoint := final.lastInstruction("ENTRYPOINT"); entrypoint != nil {
		return fmt.Errorf("%s: ENTRYPOINT turns CMD into its arguments: remove it", at(entrypoint))
	}
	cmd := final.lastInstruction("CMD")
	if cmd == nil {
		return fmt.Errorf("%s: the final stage has no CMD: add `CMD %q`", at(final.from), want)
	}
	if !cmd.Attributes["json"] || !slices.Equal(args(cmd), want) {
		return fmt.Errorf("%s: CMD is %q: use the exec form %q", at(cmd), strings.Join(args(cmd), " "), want)
	}
	return nil
}

// checkPorts requires EXPOSE of HTTP, HTTPS and HTTP/3.
func checkPorts(df *dockerfile) error {
	final := df.final()
	var exposed []string
	for _, node := range final.instructions {
		if is(node, "EXPOSE") {
			for _, port := range args(node) {
				exposed = append(exposed, strings.TrimSuffix(port, "/tcp"))
			}
		}
	}
	for _, port := range []string{"80", "443", "443/udp"} {
		if !slices.Contains(exposed, port) {
			return fmt.Errorf("%s: the final stage does not EXPOSE %s: add `EXPOSE 80 443 443/udp`", at(final.from), port)
		}
	}
	return nil
}

// checkParserWarnings requires a Dockerfile that BuildKit parses without
// warnings, such as the one about empty continuation lines.
func checkParserWarnings(df *dockerfile) error {
	for _, w := range df.warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		return fmt.Errorf("%s line %d: BuildKit warns: %s", dockerfileName, line, w.Short)
	}
	return nil
}

// dockerfileChecks are the rules for xcaddy.Dockerfile, by name.
var dockerfileChecks = map[string]func(*dockerfile) error{
	"stages":             checkStages,
	"base images pinned": checkBaseImagesPinned,
	"go image":           checkGoImage,
	"xcaddy pinned":      checkXcaddyPinned,
	"builds checkout":    checkXcaddyBuildsCheckout,
	"caddy version":      checkCaddyVersion,
	"proxy fallback":     checkProxyFallback,
	"binary copied":      checkBinaryCopied,
	"non-root user":      checkNonRootUser,
	"data volume":        checkDataDir,
	"config volume":      checkConfigDir,
	"demo caddyfile":     checkDemoCaddyfile,
	"context sources":    checkContextSources,
	"command":            checkCommand,
	"ports":              checkPorts,
	"no parser warnings": checkParserWarnings,
}

func readDockerfile(t *testing.T) (root, text string) {
	t.Helper()
	root = repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, dockerfileName))
	if err != nil {
		t.Fatalf("reading %s: %v", dockerfileName, err)
	}
	return root, string(data)
}

func TestDockerfile(t *testing.T) {
	root, text := readDockerfile(t)
	df := parseDockerfile(t, root, text)
	for _, name := range slices.Sorted(maps.Keys(dockerfileChecks)) {
		t.Run(name, func(t *testing.T) {
			if err := dockerfileChecks[name](df); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDockerfileChecksFail breaks the real Dockerfile one way at a time and
// expects the check for that rule to report it, so no check passes
// whatever the file contains.
func TestDockerfileChecksFail(t *testing.T) {
	root, text := readDockerfile(t)
	tests := []struct {
		name     string
		check    string
		old, new string
	}{
		{"build stage unnamed", "stages", " AS build\n", "\n"},
		{"runtime image untagged", "base images pinned", "FROM alpine:3.23", "FROM alpine"},
		{"runtime image latest", "base images pinned", "FROM alpine:3.23", "FROM alpine:latest"},
		{"go 1.25 image", "go image", "golang:1.26-alpine3.23", "golang:1.25-alpine3.23"},
		{"xcaddy at latest", "xcaddy pinned", "xcaddy@v0.4.5", "xcaddy@latest"},
		{"xcaddy not installed", "xcaddy pinned", "RUN go install github.com/caddyserver/xcaddy/cmd/xcaddy@v0.4.5\n", "\n"},
		{"plugin without replacement", "builds checkout", "caddy-webhooks=/src", "caddy-webhooks"},
		{"replacement not copied", "builds checkout", "caddy-webhooks=/src", "caddy-webhooks=/app"},
		{"checkout not copied", "builds checkout", "COPY . .\n", "COPY go.mod .\n"},
		{"other caddy version", "caddy version", "ARG CADDY_VERSION=v2.11.9", "ARG CADDY_VERSION=v2.10.0"},
		{"caddy version unset", "caddy version", "ARG CADDY_VERSION=v2.11.9\n", "\n"},
		{"caddy version argument", "caddy version", "xcaddy build --with", "xcaddy build v2.10.0 --with"},
		{"proxy without fallback", "proxy fallback", "ARG GOPROXY=https://proxy.golang.org|off", "ARG GOPROXY=https://proxy.golang.org,direct"},
		{"proxy unset", "proxy fallback", "ARG GOPROXY=https://proxy.golang.org|off\n", "\n"},
		{"other binary copied", "binary copied", "COPY --from=build /usr/bin/caddy /usr/bin/caddy", "COPY --from=build /usr/bin/caddy2 /usr/bin/caddy"},
		{"binary outside PATH", "binary copied", "COPY --from=build /usr/bin/caddy /usr/bin/caddy", "COPY --from=build /usr/bin/caddy /opt/caddy"},
		{"user root", "non-root user", "USER 10001\n", "USER root\n"},
		{"user 0", "non-root user", "USER 10001\n", "USER 0:0\n"},
		{"user by name", "non-root user", "USER 10001\n", "USER caddy\n"},
		{"no user", "non-root user", "USER 10001\n", "\n"},
		{"no data volume", "data volume", `VOLUME ["/data", "/config"]`, `VOLUME ["/config"]`},
		{"other data dir", "data volume", "ENV XDG_DATA_HOME=/data", "ENV XDG_DATA_HOME=/var/lib/caddy"},
		{"no config volume", "config volume", `VOLUME ["/data", "/config"]`, `VOLUME ["/data"]`},
		{"demo not copied", "demo caddyfile", "COPY testdata/demo.Caddyfile /etc/caddy/examples/demo.Caddyfile\n", "\n"},
		{"missing source", "context sources", "COPY testdata/demo.Caddyfile", "COPY testdata/missing.Caddyfile"},
		{"json adapter", "command", `"--adapter", "caddyfile"]`, `"--adapter", "json"]`},
		{"shell form", "command", `CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]`, "CMD caddy run --config /etc/caddy/Caddyfile --adapter caddyfile"},
		{"no http3 port", "ports", "EXPOSE 80 443 443/udp", "EXPOSE 80 443"},
		{"empty continuation line", "no parser warnings", "    && apk del .setcap", "\n    && apk del .setcap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(text, tt.old) {
				t.Fatalf("%s no longer contains %q: update this case to break the rule %q another way", dockerfileName, tt.old, tt.check)
			}
			broken := parseDockerfile(t, root, strings.Replace(text, tt.old, tt.new, 1))
			err := dockerfileChecks[tt.check](broken)
			if err == nil {
				t.Fatalf("check %q passed with %q replaced by %q", tt.check, tt.old, tt.new)
			}
			t.Log(err)
		})
	}
}
