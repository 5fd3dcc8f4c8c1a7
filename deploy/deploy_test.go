package deploy

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var (
	// metricLiteral finds metric names where the code declares them: string literals.
	metricLiteral = regexp.MustCompile(`"(vaxgate_[a-z0-9_]+)"`)
	// metricRef finds metric names in PromQL.
	metricRef = regexp.MustCompile(`\bvaxgate_[a-z0-9_]+`)
)

// exported lists the metric names declared in the module's non-test Go code.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata", "data":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			strings.Contains(path, string(filepath.Separator)+"storetest"+string(filepath.Separator)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricLiteral.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan the module for metric names: %v", err)
	}
	if len(names) < 10 {
		t.Fatalf("found only %d metric names in the code: the scan is broken", len(names))
	}
	return names
}

// checkQuery fails the test for each vaxgate_ metric in expr that the code does not export.
// Histogram and summary series (_bucket, _sum, _count) count as their metric.
func checkQuery(t *testing.T, where, expr string, names map[string]bool) int {
	t.Helper()
	refs := metricRef.FindAllString(expr, -1)
	for _, ref := range refs {
		base := ref
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if trimmed, ok := strings.CutSuffix(ref, suffix); ok && names[trimmed] {
				base = trimmed
			}
		}
		if !names[base] {
			t.Errorf("%s: query names %s, which vaxgate does not export:\n%s", where, ref, expr)
		}
	}
	return len(refs)
}

func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("grafana/vaxgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string `json:"title"`
		UID           string `json:"uid"`
		SchemaVersion int    `json:"schemaVersion"`
		Panels        []struct {
			ID      int    `json:"id"`
			Title   string `json:"title"`
			Type    string `json:"type"`
			GridPos struct {
				X, Y, W, H int
			} `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("grafana/vaxgate.json does not parse: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion == 0 {
		t.Fatalf("dashboard lacks title, uid or schemaVersion: %q %q %d", dash.Title, dash.UID, dash.SchemaVersion)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dashboard has no panels")
	}
	ids := map[int]bool{}
	refs := 0
	for _, p := range dash.Panels {
		if p.Title == "" || p.Type == "" || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: missing title/type or bad gridPos %+v", p.ID, p.Title, p.GridPos)
		}
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: empty query", p.Title, tg.RefID)
			}
			refs += checkQuery(t, "panel "+p.Title, tg.Expr, names)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			if s, ok := q["query"].(string); ok {
				refs += checkQuery(t, "variable "+v.Name, s, names)
			}
		}
	}
	if refs == 0 {
		t.Fatal("no dashboard query names a vaxgate metric")
	}
}

func TestAlertRulesNameExportedMetrics(t *testing.T) {
	names := exported(t)
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("prometheus/alerts.yml does not parse: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("group %s: rule %q needs alert, expr, a severity label and a summary", g.Name, r.Alert)
			}
			checkQuery(t, "alert "+r.Alert, r.Expr, names)
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}
}

// promtool is Prometheus' own checker: `make deps` installs it (Debian package prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not found: `make deps` installs it (apt-get install prometheus)")
		}
		t.Skip("promtool not found: run `make deps` (apt-get install prometheus) to check the rules with it")
	}
	return p
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", "prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// The alert unit tests (prometheus/alerts_test.yml) show each alert firing on the series it watches.
func TestPromtoolTestRules(t *testing.T) {
	cmd := exec.Command(promtool(t), "test", "rules", "alerts_test.yml")
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// stages returns the Dockerfile's stages: FROM line and the instructions under it.
func stages(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			out = append(out, nil)
		}
		if len(out) == 0 {
			t.Fatalf("%s: instruction before FROM: %s", path, line)
		}
		out[len(out)-1] = append(out[len(out)-1], line)
	}
	return out
}

func TestDockerfileRunsStaticNonRootWithoutShell(t *testing.T) {
	st := stages(t, "Dockerfile")
	if len(st) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(st))
	}
	final := st[len(st)-1]
	base := strings.Fields(final[0])[1]
	if !strings.Contains(base, "distroless/static") && base != "scratch" {
		t.Errorf("runtime base %s may carry a shell: use distroless/static or scratch", base)
	}
	var user, entry string
	for _, l := range final {
		switch f := strings.Fields(l); strings.ToUpper(f[0]) {
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entry = l
		case "RUN":
			t.Errorf("runtime stage runs a command (needs a shell): %s", l)
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("runtime stage user %q: want a non-root USER", user)
	}
	if !strings.HasPrefix(entry, "ENTRYPOINT [") {
		t.Errorf("ENTRYPOINT must be exec form (no shell): %q", entry)
	}
	build := strings.Join(st[0], "\n")
	if !strings.Contains(build, "CGO_ENABLED=0") || !strings.Contains(build, "./cmd/vaxgate") {
		t.Error("build stage must build ./cmd/vaxgate statically (CGO_ENABLED=0)")
	}
}

func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			Build       struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			DependsOn map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			Ports []string `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose/compose.yaml does not parse: %v", err)
	}
	v, ok := c.Services["vaxgate"]
	if !ok {
		t.Fatal("no vaxgate service")
	}
	if _, ok := c.Services["postgres"]; !ok {
		t.Fatal("no postgres service")
	}
	if v.DependsOn["postgres"].Condition != "service_healthy" {
		t.Error("vaxgate must wait for a healthy postgres")
	}
	df := filepath.Join("compose", v.Build.Context, v.Build.Dockerfile)
	if _, err := os.Stat(df); err != nil {
		t.Errorf("vaxgate build: %v", err)
	}
	for _, key := range []string{"VAXGATE_DATABASE_URL", "VAXGATE_SMTP_ADDR"} {
		if v.Environment[key] == "" {
			t.Errorf("vaxgate service lacks %s", key)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/vaxgate.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "[") {
			section = strings.Trim(l, "[]")
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("systemd unit: not key=value: %q", l)
		}
		keys[section+"."+k] = v
	}
	want := []string{"Service.ExecStart", "Service.User", "Service.Restart", "Install.WantedBy", "Service.NoNewPrivileges"}
	var missing []string
	for _, k := range want {
		if keys[k] == "" {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("systemd unit lacks %v", missing)
	}
	if keys["Service.User"] == "root" {
		t.Error("the service must not run as root")
	}
	if !strings.HasPrefix(keys["Service.ExecStart"], "/usr/local/bin/vaxgate serve") {
		t.Errorf("ExecStart = %q", keys["Service.ExecStart"])
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, err := exec.Command(sa, "verify", "systemd/vaxgate.service").CombinedOutput()
		// verify wants the binary installed; everything else it reports is a real problem.
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("systemd-analyze: %v", err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" && !strings.Contains(l, "/usr/local/bin/vaxgate is not executable") {
				t.Errorf("systemd-analyze verify: %s", l)
			}
		}
	}
}
