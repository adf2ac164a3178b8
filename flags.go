package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// settings registers the server's flags with their types, so -h shows
// "duration" or "int" rather than "string". A setting's value comes from,
// in order of precedence: the command line, its environment variable
// (CONSULT_ and the flag's name in capitals, '-' as '_', for containers),
// the -config file (YAML, keyed by the flags' names), the built-in
// default.
type settings struct {
	fs   *flag.FlagSet
	file map[string]string // from -config
	errs []error           // bad defaults from the environment or the file
}

// envName is a flag's environment variable.
func envName(name string) string {
	return "CONSULT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// source returns the environment's or the file's value for a flag.
func (s *settings) source(name string) (string, string, bool) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		return v, envName(name), true
	}
	if v, ok := s.file[name]; ok {
		return v, "the config file's " + name, true
	}
	return "", "", false
}

// secret is a string flag whose value from the environment or the file
// is not shown as its default by -h or a usage error.
func (s *settings) secret(p *string, name, usage string) {
	s.fs.StringVar(p, name, "", usage)
	if v, _, ok := s.source(name); ok {
		*p = v
	}
}

func (s *settings) str(p *string, name, def, usage string) {
	if v, _, ok := s.source(name); ok {
		def = v
	}
	s.fs.StringVar(p, name, def, usage)
}

// sourced is def, or the environment's or the file's value for name
// parsed by parse; a value that does not parse is an error (want says
// what it should be) and leaves def.
func sourced[T any](s *settings, name string, def T, parse func(string) (T, error), want string) T {
	v, from, ok := s.source(name)
	if !ok {
		return def
	}
	x, err := parse(strings.TrimSpace(v))
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s: want %s, got %q", from, want, v))
		return def
	}
	return x
}

func (s *settings) boolean(p *bool, name string, def bool, usage string) {
	s.fs.BoolVar(p, name, sourced(s, name, def, strconv.ParseBool, "true or false"), usage)
}

func (s *settings) integer(p *int, name string, def int, usage string) {
	s.fs.IntVar(p, name, sourced(s, name, def, strconv.Atoi, "a whole number"), usage)
}

func (s *settings) number(p *float64, name string, def float64, usage string) {
	parse := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	s.fs.Float64Var(p, name, sourced(s, name, def, parse, "a number"), usage)
}

func (s *settings) duration(p *time.Duration, name string, def time.Duration, usage string) {
	s.fs.DurationVar(p, name, sourced(s, name, def, time.ParseDuration, "a duration such as 30s or 10m"), usage)
}

// configPath finds -config in args (before the flags are parsed, since
// the file sets their defaults).
func configPath(args []string) string {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if v, ok := strings.CutPrefix(a, "config="); ok {
			return v
		}
		if a == "config" && i+1 < len(args) {
			return args[i+1]
		}
		if a == "" { // "--": the end of the flags
			break
		}
	}
	return os.Getenv(envName("config"))
}

// readConfig reads a YAML file of flag names and values. A list becomes
// the comma-separated value the flag takes.
func readConfig(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-config: %w", err)
	}
	// A node, not values: a scalar keeps its text as written (a secret
	// such as 0123 or 1e5 is no number).
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("-config %s: %w", path, err)
	}
	out := map[string]string{}
	if len(doc.Content) == 0 {
		return out, nil // an empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("-config %s: want settings (name: value), one per line", path)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i].Value, top.Content[i+1]
		switch v.Kind {
		case yaml.ScalarNode:
			out[k] = v.Value
			if v.Tag == "!!null" {
				out[k] = ""
			}
		case yaml.SequenceNode:
			parts := make([]string, 0, len(v.Content))
			for _, x := range v.Content {
				if x.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("-config %s: %s: want a list of values", path, k)
				}
				parts = append(parts, x.Value)
			}
			out[k] = strings.Join(parts, ",")
		default:
			return nil, fmt.Errorf("-config %s: %s: want a value or a list, not a map", path, k)
		}
	}
	return out, nil
}

// checkFileKeys refuses names in the file that are no flag (a typo would
// otherwise be a setting silently left at its default).
func (s *settings) checkFileKeys() error {
	var unknown []string
	for k := range s.file {
		if s.fs.Lookup(k) == nil || k == "config" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("-config: no such setting: %s (the names are the flags', see -h)", strings.Join(unknown, ", "))
	}
	return nil
}
