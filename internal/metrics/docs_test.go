package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var metricNameRE = regexp.MustCompile(`\bxdplb_[a-z0-9_]+\b`)

// dashPanel is the part of a Grafana panel the checks read; rows nest
// panels.
type dashPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

type dashboard struct {
	Title         string      `json:"title"`
	UID           string      `json:"uid"`
	SchemaVersion int         `json:"schemaVersion"`
	Panels        []dashPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	return d
}

// checkNames fails for every xdplb_ metric name in text that the collector
// does not describe, and returns how many names it found.
func checkNames(t *testing.T, described map[string]bool, where, text string) int {
	t.Helper()
	found := metricNameRE.FindAllString(text, -1)
	for _, name := range found {
		if !described[name] {
			t.Errorf("%s: %s is not a metric the collector describes", where, name)
		}
	}
	return len(found)
}

// The dashboard parses, selects its Prometheus through a variable, and
// queries only metrics the collector describes.
func TestDashboardQueriesDescribedMetrics(t *testing.T) {
	described := describedNames(t)
	d := readDashboard(t)

	if d.Title == "" || d.UID == "" {
		t.Error("dashboard has no title or uid")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want a current one (39)", d.SchemaVersion)
	}
	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			if v.Name == "datasource" && v.Query == "prometheus" {
				hasDatasourceVar = true
			}
		case "query":
			q, _ := json.Marshal(v.Query)
			checkNames(t, described, "variable "+v.Name, v.Definition+" "+string(q))
		}
	}
	if !hasDatasourceVar {
		t.Error(`no "datasource" variable of type datasource for prometheus`)
	}

	var queries int
	ids := map[int]string{}
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q does not use the ${datasource} variable", p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no queries", p.Title)
			}
			for _, tg := range p.Targets {
				if checkNames(t, described, "panel "+p.Title, tg.Expr) == 0 {
					t.Errorf("panel %q: query %s %q uses no xdplb metric", p.Title, tg.RefID, tg.Expr)
				}
				queries++
			}
		}
	}
	walk(d.Panels)
	if queries == 0 {
		t.Fatal("dashboard has no queries")
	}
}

// docs/metrics.md documents every metric the collector describes, and no
// other.
func TestMetricsDocCoversDescribedMetrics(t *testing.T) {
	described := describedNames(t)
	data, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	checkNames(t, described, "docs/metrics.md", doc)
	var missing []string
	for name := range described {
		if !strings.Contains(doc, "`"+name+"`") {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	for _, name := range missing {
		t.Errorf("docs/metrics.md does not document `%s`", name)
	}
}
