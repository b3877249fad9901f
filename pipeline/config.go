package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// Definitions are the pipelines of one pipelines.yaml file, ready to run.
type Definitions struct {
	File      string
	pipelines map[string]*Pipeline
	texts     map[string]string // each pipeline's YAML in a canonical form, for Diff
}

// Entry is one handler entry of a pipeline in its normalised form.
type Entry struct {
	Name   string         // the handler name as written in pipelines.yaml
	Params map[string]any // never nil
	Line   int            // line of the entry in the file (0: not from a file)
	// HandleTimeout and CommitTimeout bound this handler's HandleEvents and
	// Commit (the entry's "timeout"); 0: only the pipeline's limits apply.
	HandleTimeout time.Duration
	CommitTimeout time.Duration
}

// Time limits of a pipeline's phases when pipelines.yaml sets none.
const (
	// DefaultHandleTimeout bounds the HandleEvents calls of one run, all
	// handlers together.
	DefaultHandleTimeout = 30 * time.Second
	// DefaultCommitTimeout bounds the Commit calls of one run, all
	// handlers together (a webhook's retries happen inside it).
	DefaultCommitTimeout = time.Minute
)

// OnError is a pipeline's policy for a failing handler.
type OnError int

// Error policies (the pipeline's on_error key).
const (
	// OnErrorRollback fails the whole run when a handler fails: every
	// handler is rolled back and nothing commits (the original's
	// all-or-nothing). The default.
	OnErrorRollback OnError = iota + 1
	// OnErrorContinue logs, counts and skips a failing handler: it is
	// rolled back alone, its input goes on to the next handler, and the
	// others still run and commit. A failing Commit is logged and counted
	// and the run still succeeds.
	OnErrorContinue
)

// String returns the policy's name in pipelines.yaml.
func (o OnError) String() string {
	switch o {
	case OnErrorRollback:
		return "rollback"
	case OnErrorContinue:
		return "continue"
	}
	return "INVALID"
}

// Pipeline is a named chain of handler entries. Run it with Run; a Pipeline
// is safe for concurrent runs (every run builds its own handlers).
type Pipeline struct {
	Name    string
	Entries []Entry
	// HandleTimeout bounds the HandleEvents phase of a run (all handlers
	// together), CommitTimeout its Commit phase; exceeding either fails the
	// run like any handler error (ErrTimeout). Zero values are the defaults.
	HandleTimeout time.Duration
	CommitTimeout time.Duration
	// OnError is the policy for a failing handler (zero: OnErrorRollback).
	OnError OnError
	build   []Builder
}

// Pipeline returns the pipeline with the given name.
func (d *Definitions) Pipeline(name string) (*Pipeline, bool) {
	p, ok := d.pipelines[name]
	return p, ok
}

// Names returns the pipeline names, sorted.
func (d *Definitions) Names() []string {
	return slices.Sorted(maps.Keys(d.pipelines))
}

// Load reads and parses a pipelines.yaml file; see Parse.
func Load(path string, reg *Registry) (*Definitions, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load pipelines: %w", err)
	}
	return Parse(path, data, reg)
}

// Parse parses pipelines.yaml content: a mapping of pipeline name to a list
// of handler entries, each either a handler name or a mapping
// {name: <handler>, params: {...}, timeout: ...}; a pipeline may also be a
// mapping {handlers: [...], timeout: ..., on_error: rollback|continue}. YAML anchors, aliases and merge keys are
// resolved. Every handler name is looked up in reg and its factory
// validates the params. Every problem is reported: the error joins one
// *ConfigError per problem, naming the file, line, pipeline and handler.
func Parse(file string, data []byte, reg *Registry) (*Definitions, error) {
	if reg == nil {
		return nil, errors.New("pipeline: Parse needs a handler registry")
	}
	defs := &Definitions{File: file, pipelines: map[string]*Pipeline{}}
	root, perr := yamlfile.Parse(data)
	if perr != nil {
		return nil, &ConfigError{File: file, Line: perr.Line, Err: perr.Err}
	}
	if root == nil {
		return defs, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: file, Line: root.Line, Err: fmt.Errorf("pipelines must be a mapping of pipeline name to handler list, not %s", yamlfile.Describe(root))}
	}
	fields, keyErrs := yamlfile.Mapping(root, yamlfile.Keys{})
	var errs []error
	for _, e := range keyErrs {
		errs = append(errs, &ConfigError{File: file, Line: e.Line, Pipeline: e.Key, Err: e.Err})
	}
	for _, f := range fields {
		if f.Name == "" {
			errs = append(errs, &ConfigError{File: file, Line: f.Key.Line, Err: errors.New("pipeline name must be a non-empty string")})
			continue
		}
		p, perrs := parsePipeline(file, f.Name, f.Value, reg)
		errs = append(errs, perrs...)
		if len(perrs) == 0 {
			defs.pipelines[f.Name] = p
			if defs.texts == nil {
				defs.texts = map[string]string{}
			}
			defs.texts[f.Name] = yamlfile.Canonical(f.Value)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return defs, nil
}

// parsePipeline builds one pipeline and returns every problem of its
// entries.
func parsePipeline(file, name string, n *yaml.Node, reg *Registry) (*Pipeline, []error) {
	p := &Pipeline{Name: name, HandleTimeout: DefaultHandleTimeout, CommitTimeout: DefaultCommitTimeout, OnError: OnErrorRollback}
	if yamlfile.IsNull(n) {
		return p, nil
	}
	var errs []error
	if n.Kind == yaml.MappingNode {
		list, perrs := p.options(file, n)
		if len(perrs) > 0 {
			return nil, perrs
		}
		if n = list; yamlfile.IsNull(n) {
			return p, nil
		}
	}
	if n.Kind != yaml.SequenceNode {
		return nil, []error{&ConfigError{File: file, Line: n.Line, Pipeline: name, Err: fmt.Errorf("a pipeline must be a list of handler entries (or a mapping with a handlers list), not %s", yamlfile.Describe(n))}}
	}
	for _, en := range n.Content {
		en = yamlfile.Resolve(en)
		e, params, eerrs := normalizeEntry(file, name, en)
		if len(eerrs) > 0 {
			errs = append(errs, eerrs...)
			continue
		}
		f, err := reg.Lookup(e.Name)
		if err != nil {
			errs = append(errs, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name,
				Err: fmt.Errorf("Unknown handler in pipeline config %s: %w", e.Name, err)})
			continue
		}
		b, err := f(params)
		if err != nil {
			errs = append(errs, configErrors(err, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name})...)
			continue
		}
		if b == nil {
			errs = append(errs, &ConfigError{File: file, Line: en.Line, Pipeline: name, Handler: e.Name, Err: errors.New("handler factory returned no builder")})
			continue
		}
		p.Entries = append(p.Entries, e)
		p.build = append(p.build, b)
	}
	return p, errs
}

// configErrors splits the error of a handler factory into its
// *ConfigError values (Params.Decode joins several); any other error is
// placed at where.
func configErrors(err error, where *ConfigError) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, configErrors(e, where)...)
		}
		return out
	}
	var ce *ConfigError
	if errors.As(err, &ce) {
		return []error{err}
	}
	at := *where
	at.Err = err
	return []error{&at}
}

// Keys of a pipeline written as a mapping and of a handler entry.
const (
	keyHandlers = "handlers"
	keyTimeout  = "timeout"
	keyOnError  = "on_error"
	keyHandle   = "handle"
	keyCommit   = "commit"
)

var pipelineKeys = yamlfile.Strict(keyHandlers, keyTimeout, keyOnError)

// options reads the settings of a pipeline written as a mapping and
// returns its handlers list.
func (p *Pipeline) options(file string, n *yaml.Node) (*yaml.Node, []error) {
	fields, keyErrs := yamlfile.Mapping(n, pipelineKeys)
	var errs []error
	for _, e := range keyErrs {
		errs = append(errs, &ConfigError{File: file, Line: e.Line, Pipeline: p.Name, Err: fmt.Errorf("%s: %w", e.Key, e.Err)})
	}
	if f, ok := yamlfile.Lookup(fields, keyTimeout); ok {
		h, c, err := parseTimeout(f.Value)
		if err != nil {
			errs = append(errs, &ConfigError{File: file, Line: f.Value.Line, Pipeline: p.Name, Err: fmt.Errorf("timeout: %w", err)})
		}
		if h > 0 {
			p.HandleTimeout = h
		}
		if c > 0 {
			p.CommitTimeout = c
		}
	}
	if f, ok := yamlfile.Lookup(fields, keyOnError); ok {
		switch f.Value.Value {
		case "rollback":
			p.OnError = OnErrorRollback
		case "continue":
			p.OnError = OnErrorContinue
		default:
			errs = append(errs, &ConfigError{File: file, Line: f.Value.Line, Pipeline: p.Name,
				Err: fmt.Errorf("on_error: must be rollback or continue, not %s", render(f.Value))})
		}
	}
	f, ok := yamlfile.Lookup(fields, keyHandlers)
	if !ok {
		errs = append(errs, &ConfigError{File: file, Line: n.Line, Pipeline: p.Name, Err: errors.New("a pipeline written as a mapping needs a handlers list")})
	}
	return f.Value, errs
}

// parseTimeout reads a timeout: one duration for both phases, or a mapping
// {handle: D, commit: D} (either may be left out: 0). A duration is a
// number of seconds or a Go duration string ("30s", "2m").
func parseTimeout(n *yaml.Node) (handle, commit time.Duration, err error) {
	n = yamlfile.Resolve(n)
	switch n.Kind {
	case yaml.ScalarNode:
		d, err := parseDuration(n)
		return d, d, err
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], yamlfile.Resolve(n.Content[i+1])
			d, err := parseDuration(v)
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w", k.Value, err)
			}
			switch k.Value {
			case keyHandle:
				handle = d
			case keyCommit:
				commit = d
			default:
				return 0, 0, fmt.Errorf("unknown key %q (known: handle, commit)", k.Value)
			}
		}
		return handle, commit, nil
	}
	return 0, 0, errors.New("must be a duration (30s, or a number of seconds) or a mapping {handle: 30s, commit: 1m}")
}

func parseDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, errors.New("must be a duration such as 30s or a number of seconds")
	}
	var d time.Duration
	switch n.ShortTag() {
	case "!!int", "!!float":
		secs, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid number of seconds %q", n.Value)
		}
		d = time.Duration(secs * float64(time.Second))
	default:
		var err error
		if d, err = time.ParseDuration(n.Value); err != nil {
			return 0, fmt.Errorf("invalid duration %q (want 30s, 2m, or a number of seconds)", n.Value)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be positive, not %s", n.Value)
	}
	return d, nil
}

var entryKeys = yamlfile.Strict("name", "params", keyTimeout)

// normalizeEntry turns one list item into {name, params}.
func normalizeEntry(file, pipeline string, n *yaml.Node) (Entry, Params, []error) {
	fail := func(handler, msg string) (Entry, Params, []error) {
		return Entry{}, Params{}, []error{&ConfigError{File: file, Line: n.Line, Pipeline: pipeline, Handler: handler, Err: errors.New(msg)}}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || n.Value == "" {
			return fail("", "Handler name not in config! "+render(n))
		}
		p, err := newParams(file, n.Line, pipeline, n.Value, nil)
		if err != nil {
			return Entry{}, Params{}, []error{err}
		}
		return Entry{Name: n.Value, Params: map[string]any{}, Line: n.Line}, p, nil
	case yaml.MappingNode:
	default:
		return fail("", "Handler name not in config! "+render(n))
	}
	fields, keyErrs := yamlfile.Mapping(n, entryKeys)
	nameField, ok := yamlfile.Lookup(fields, "name")
	if !ok || nameField.Value.Kind != yaml.ScalarNode || nameField.Value.ShortTag() != "!!str" || nameField.Value.Value == "" {
		return fail("", "Handler name not in config! "+render(n))
	}
	handler := nameField.Value.Value
	var errs []error
	for _, e := range keyErrs {
		errs = append(errs, &ConfigError{File: file, Line: e.Line, Pipeline: pipeline, Handler: handler, Err: fmt.Errorf("%s: %w", e.Key, e.Err)})
	}
	var paramsNode *yaml.Node
	if f, ok := yamlfile.Lookup(fields, "params"); ok {
		paramsNode = f.Value
	}
	p, err := newParams(file, n.Line, pipeline, handler, paramsNode)
	if err != nil {
		errs = append(errs, err)
	}
	e := Entry{Name: handler, Params: p.Map(), Line: n.Line}
	if f, ok := yamlfile.Lookup(fields, keyTimeout); ok {
		if e.HandleTimeout, e.CommitTimeout, err = parseTimeout(f.Value); err != nil {
			errs = append(errs, &ConfigError{File: file, Line: f.Value.Line, Pipeline: pipeline, Handler: handler, Err: fmt.Errorf("timeout: %w", err)})
		}
	}
	if len(errs) > 0 {
		return Entry{}, Params{}, errs
	}
	return e, p, nil
}

// render writes a node as one line of flow YAML for messages.
func render(n *yaml.Node) string {
	c := *n
	setFlow(&c)
	out, err := yaml.Marshal(&c)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for i, c := range n.Content {
		cc := *c
		setFlow(&cc)
		n.Content[i] = &cc
	}
}
