// Command dashboard-check holds Grafana dashboard JSON files to the Grafana Foundation SDK's
// schema: a strict unmarshal (unknown fields and wrong types are errors) and its validation.
//
//	dashboard-check FILE...
//
// Prints one JSON line per file ({"file", "ok", "errors"}); exits 1 if any file fails.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

type result struct {
	File   string   `json:"file"`
	OK     bool     `json:"ok"`
	Errors []string `json:"errors"`
}

func check(path string) result {
	out := result{File: path, Errors: []string{}}
	raw, err := os.ReadFile(path)
	if err != nil {
		out.Errors = append(out.Errors, err.Error())
		return out
	}
	var board dashboard.Dashboard
	if err := board.UnmarshalJSONStrict(raw); failed(err) {
		out.Errors = append(out.Errors, "strict unmarshal: "+err.Error())
		return out
	}
	if err := board.Validate(); failed(err) {
		out.Errors = append(out.Errors, "validate: "+err.Error())
		return out
	}
	out.OK = true
	return out
}

// failed says whether err is an error: the SDK returns an empty cog.BuildErrors, a typed nil
// that is not == nil as an error, when there is none.
func failed(err error) bool {
	var built cog.BuildErrors
	if errors.As(err, &built) {
		return len(built) > 0
	}
	return err != nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dashboard-check FILE...")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins() // panels' options and queries unmarshal to their types
	failed := false
	encoder := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[1:] {
		res := check(path)
		failed = failed || !res.OK
		if err := encoder.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	if failed {
		os.Exit(1)
	}
}
