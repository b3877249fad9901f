package trigger

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger/timex"
)

// Keys of a trigger definition in triggers.yaml.
const (
	keyName            = "name"
	keyDebugLevel      = "debug_level"
	keyDistinguishedBy = "distinguished_by"
	keyExpiration      = "expiration"
	keyFireDelay       = "fire_delay"
	keyFirePipeline    = "fire_pipeline"
	keyExpirePipeline  = "expire_pipeline"
	keyMatchCriteria   = "match_criteria"
	keyFireCriteria    = "fire_criteria"
	keyLoadCriteria    = "load_criteria"
)

// Keys of a criteria entry.
const (
	keyEventType   = "event_type"
	keyNumber      = "number"
	keyTimestamp   = "timestamp"
	keyMapDist     = "map_distinguished_by"
	keyMapDistTypo = "map_distingushed_by" // the original sample's misspelling
	keyTraits      = "traits"
)

// maxNodeVisits bounds the work of walking a document, so that aliases
// referring to aliases cannot make loading explode. A file of a thousand
// triggers visits a few tens of thousands of nodes.
const maxNodeVisits = 1 << 18

// Load reads and parses a triggers.yaml file. See Parse.
func Load(path string) ([]*Definition, []Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &DefinitionError{File: path, Err: err}
	}
	return Parse(path, data)
}

// Parse parses the content of a triggers.yaml file (a YAML list of trigger
// definitions) named file in messages. It checks every definition
// completely: required fields, types, criteria, and every time expression
// (all parsed here, once). Unknown keys are errors, except the misspelling
// map_distingushed_by, accepted as map_distinguished_by with a warning.
// Duplicate trigger names are errors.
//
// All problems found are returned together, joined with errors.Join; each
// is a *DefinitionError (use errors.As to get the first). On error no
// definitions are returned. Warnings are returned in either case.
func Parse(file string, data []byte) ([]*Definition, []Warning, error) {
	l := &loader{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, nil // an empty file defines no triggers
		}
		return nil, nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, yamlError(file, err)
		}
		return nil, nil, &DefinitionError{File: file, Line: extra.Line, Err: errors.New("more than one YAML document (put all triggers in one list)")}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil, nil
	}
	root := l.resolve(doc.Content[0])
	var defs []*Definition
	switch {
	case root == nil:
	case isNull(root):
	case root.Kind != yaml.SequenceNode:
		l.errorf(root, "", "", "a triggers file must be a list of trigger definitions, not %s", describe(root))
	default:
		first := map[string]*Definition{}
		for _, item := range root.Content {
			d := l.definition(item)
			if d == nil {
				continue
			}
			if prev, ok := first[d.Name]; ok {
				l.errorf(item, d.Name, keyName, "duplicate trigger name (first defined at line %d)", prev.Line)
				continue
			}
			first[d.Name] = d
			defs = append(defs, d)
		}
	}
	if len(l.errs) > 0 {
		return nil, l.warns, errors.Join(l.errs...)
	}
	return defs, l.warns, nil
}

// yamlLine finds the line number in a yaml.v3 error message.
var yamlLine = regexp.MustCompile(`\bline (\d+):`)

// yamlError reports a YAML syntax error, with its line when known.
func yamlError(file string, err error) error {
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return &DefinitionError{File: file, Line: line, Err: fmt.Errorf("invalid YAML: %w", err)}
}

// loader collects the problems of one file.
type loader struct {
	file   string
	errs   []error
	warns  []Warning
	visits int
	tooBig bool
}

// resolve follows aliases and counts the visit; it returns nil once the
// document is too expensive to walk.
func (l *loader) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	l.visits++
	if l.visits > maxNodeVisits {
		if !l.tooBig {
			l.tooBig = true
			l.errs = append(l.errs, &DefinitionError{File: l.file, Err: errors.New("document too complex (too many alias expansions)")})
		}
		return nil
	}
	return n
}

func (l *loader) errorf(n *yaml.Node, trig, field, format string, args ...any) {
	l.fail(n, trig, field, fmt.Errorf(format, args...))
}

func (l *loader) fail(n *yaml.Node, trig, field string, err error) {
	if l.tooBig {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &DefinitionError{File: l.file, Line: line, Trigger: trig, Field: field, Err: err})
}

func (l *loader) warn(n *yaml.Node, trig, field, format string, args ...any) {
	l.warns = append(l.warns, Warning{File: l.file, Line: n.Line, Trigger: trig, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// isMisspelling reports a key accepted only for compatibility, which
// messages do not advertise.
func isMisspelling(key string) bool { return key == keyMapDistTypo }

// field is one key/value pair of a mapping.
type field struct {
	key   *yaml.Node
	value *yaml.Node
}

// mapping returns the pairs of a mapping node by key, reporting duplicate
// and unknown keys (allowed lists the known ones). The value nodes are
// resolved.
func (l *loader) mapping(n *yaml.Node, trig, path string, allowed ...string) map[string]field {
	out := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := l.resolve(n.Content[i])
		v := l.resolve(n.Content[i+1])
		if k == nil || v == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			l.errorf(k, trig, path, "a key must be a string, not %s", describe(k))
			continue
		}
		name := k.Value
		fp := join(path, name)
		if len(allowed) > 0 && !contains(allowed, name) {
			if name == "<<" {
				l.errorf(k, trig, fp, "YAML merge keys are not supported; write the fields out")
				continue
			}
			known := slices.DeleteFunc(slices.Clone(allowed), isMisspelling)
			if guess := closest(name, known); guess != "" {
				l.errorf(k, trig, fp, "unknown key (did you mean %s?)", guess)
				continue
			}
			l.errorf(k, trig, fp, "unknown key (known keys: %s)", strings.Join(known, ", "))
			continue
		}
		if _, dup := out[name]; dup {
			l.errorf(k, trig, fp, "key defined more than once")
			continue
		}
		out[name] = field{key: k, value: v}
	}
	return out
}

var definitionKeys = []string{
	keyName, keyDebugLevel, keyDistinguishedBy, keyExpiration, keyFireDelay,
	keyFirePipeline, keyExpirePipeline, keyMatchCriteria, keyFireCriteria, keyLoadCriteria,
}

// definition parses one trigger definition; nil when it has errors.
func (l *loader) definition(item *yaml.Node) *Definition {
	n := l.resolve(item)
	if n == nil {
		return nil
	}
	before := len(l.errs)
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "", "", "a trigger definition must be a mapping, not %s", describe(n))
		return nil
	}
	// The name first: every other message names the trigger.
	nameField, hasName := fieldOf(n, keyName)
	d := &Definition{File: l.file, Line: n.Line, DebugLevel: DefaultDebugLevel, FireDelay: DefaultFireDelay}
	if hasName {
		nv := l.resolve(nameField)
		if nv == nil {
			return nil
		}
		if s, ok := scalarText(nv); ok && s != "" {
			d.Name = s
		} else {
			l.errorf(nv, "", keyName, "must be a non-empty string, not %s", describe(nv))
		}
	} else {
		l.errorf(n, "", keyName, "required field in trigger definition not specified")
	}
	trig := d.Name
	fields := l.mapping(n, trig, "", definitionKeys...)

	if f, ok := fields[keyDebugLevel]; ok && !isNull(f.value) {
		d.DebugLevel = l.debugLevel(f.value, trig)
	}
	if f, ok := fields[keyDistinguishedBy]; ok {
		d.DistinguishedBy = l.distinguishedBy(f.value, trig)
	}
	if f, ok := fields[keyExpiration]; ok && !isNull(f.value) {
		d.Expiration = l.expr(f.value, trig, keyExpiration)
	} else {
		l.errorf(n, trig, keyExpiration, "required field in trigger definition not specified")
	}
	d.FirePipeline = l.pipeline(fields, keyFirePipeline, trig)
	d.ExpirePipeline = l.pipeline(fields, keyExpirePipeline, trig)
	if d.FirePipeline == "" && d.ExpirePipeline == "" {
		l.errorf(n, trig, keyFirePipeline, "at least one of fire_pipeline or expire_pipeline must be specified")
	}
	distNames := make([]string, len(d.DistinguishedBy))
	for i, dist := range d.DistinguishedBy {
		distNames[i] = dist.Trait
	}
	d.FireCriteria = l.criteriaList(n, fields, keyFireCriteria, trig, true, nil)
	d.MatchCriteria = l.criteriaList(n, fields, keyMatchCriteria, trig, true, distNames)
	d.LoadCriteria = l.criteriaList(n, fields, keyLoadCriteria, trig, false, nil)
	if f, ok := fields[keyFireDelay]; ok && !isNull(f.value) {
		d.FireDelay = l.fireDelay(f.value, trig)
	}
	if len(l.errs) > before {
		return nil
	}
	return d
}

// fieldOf returns the value node of key in mapping n, without checks.
func fieldOf(n *yaml.Node, key string) (*yaml.Node, bool) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return n.Content[i+1], true
		}
	}
	return nil, false
}

func (l *loader) debugLevel(v *yaml.Node, trig string) int {
	var s string
	switch {
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int":
		s = v.Value
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str":
		s = strings.TrimSpace(v.Value)
	case v.Kind == yaml.ScalarNode && v.ShortTag() == "!!float":
		// A whole number written as a float (2.0) is accepted, as int() does.
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
			l.errorf(v, trig, keyDebugLevel, "must be an integer 0, 1 or 2, not %s", v.Value)
			return 0
		}
		return int(f)
	default:
		l.errorf(v, trig, keyDebugLevel, "must be an integer 0, 1 or 2, not %s", describe(v))
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if v.ShortTag() == "!!int" {
			// YAML integer forms other than decimal (0x10, 0o7).
			var i int
			if derr := v.Decode(&i); derr == nil {
				n, err = i, nil
			}
		}
	}
	if err != nil || n < 0 {
		l.errorf(v, trig, keyDebugLevel, "must be an integer 0, 1 or 2, not %q", v.Value)
		return 0
	}
	return n
}

func (l *loader) distinguishedBy(v *yaml.Node, trig string) []Distinguisher {
	switch {
	case isNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		l.errorf(v, trig, keyDistinguishedBy, "must be a list of trait names or {trait: expression} mappings, not the string %q (write [%s])", v.Value, v.Value)
		return nil
	case v.Kind != yaml.SequenceNode:
		l.errorf(v, trig, keyDistinguishedBy, "must be a list of trait names or {trait: expression} mappings, not %s", describe(v))
		return nil
	}
	var out []Distinguisher
	seen := map[string]int{}
	for i, raw := range v.Content {
		e := l.resolve(raw)
		if e == nil {
			return nil
		}
		path := fmt.Sprintf("%s[%d]", keyDistinguishedBy, i)
		var dist Distinguisher
		switch e.Kind {
		case yaml.ScalarNode:
			s, ok := scalarText(e)
			if !ok || s == "" {
				l.errorf(e, trig, path, "must be a trait name or a {trait: expression} mapping, not %s", describe(e))
				continue
			}
			dist.Trait = s
		case yaml.MappingNode:
			if len(e.Content) != 2 {
				l.errorf(e, trig, path, "a distinguishing expression must map exactly one trait to an expression, not %d", len(e.Content)/2)
				continue
			}
			k, ev := l.resolve(e.Content[0]), l.resolve(e.Content[1])
			if k == nil || ev == nil {
				return nil
			}
			s, ok := scalarText(k)
			if !ok || s == "" {
				l.errorf(k, trig, path, "the trait name must be a string, not %s", describe(k))
				continue
			}
			dist.Trait = s
			dist.Expr = l.expr(ev, trig, path+"."+s)
			if dist.Expr == nil {
				continue
			}
		default:
			l.errorf(e, trig, path, "must be a trait name or a {trait: expression} mapping, not %s", describe(e))
			continue
		}
		if j, dup := seen[dist.Trait]; dup {
			l.errorf(e, trig, path, "trait %q already distinguishes at %s[%d]", dist.Trait, keyDistinguishedBy, j)
			continue
		}
		seen[dist.Trait] = i
		out = append(out, dist)
	}
	return out
}

// expr parses a time expression field; nil on error.
func (l *loader) expr(v *yaml.Node, trig, path string) *timex.Expr {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		l.errorf(v, trig, path, "must be a time expression string, not %s", describe(v))
		return nil
	}
	e, err := timex.Parse(v.Value)
	if err != nil {
		l.fail(v, trig, path, fmt.Errorf("time expression %q: %w", v.Value, err))
		return nil
	}
	return e
}

func (l *loader) pipeline(fields map[string]field, key, trig string) string {
	f, ok := fields[key]
	if !ok || isNull(f.value) {
		return ""
	}
	if f.value.Kind != yaml.ScalarNode || f.value.ShortTag() != "!!str" {
		l.errorf(f.value, trig, key, "must be a pipeline name, not %s", describe(f.value))
		return ""
	}
	return f.value.Value
}

func (l *loader) fireDelay(v *yaml.Node, trig string) time.Duration {
	var secs float64
	if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!int" || v.ShortTag() == "!!float") {
		if err := v.Decode(&secs); err != nil {
			secs = math.NaN()
		}
	} else {
		l.errorf(v, trig, keyFireDelay, "must be a number of seconds, not %s", describe(v))
		return 0
	}
	const maxSecs = float64(math.MaxInt64 / int64(time.Second))
	if math.IsNaN(secs) || secs < 0 || secs > maxSecs {
		l.errorf(v, trig, keyFireDelay, "must be a number of seconds between 0 and %.0f, not %s", maxSecs, v.Value)
		return 0
	}
	return time.Duration(secs * float64(time.Second))
}

// criteriaList parses a list of criteria entries. distNames are the
// distinguishing trait names (for match criteria; nil otherwise).
func (l *loader) criteriaList(def *yaml.Node, fields map[string]field, key, trig string, required bool, distNames []string) []*Criteria {
	f, ok := fields[key]
	if !ok || isNull(f.value) {
		if required {
			l.errorf(def, trig, key, "required criteria in trigger definition not specified")
		}
		return nil
	}
	if f.value.Kind != yaml.SequenceNode {
		l.errorf(f.value, trig, key, "must be a list of criteria, not %s", describe(f.value))
		return nil
	}
	out := make([]*Criteria, 0, len(f.value.Content))
	for i, raw := range f.value.Content {
		e := l.resolve(raw)
		if e == nil {
			return nil
		}
		c := l.criteria(e, trig, fmt.Sprintf("%s[%d]", key, i), key == keyMatchCriteria, distNames)
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

var criteriaKeys = []string{keyEventType, keyNumber, keyTimestamp, keyMapDist, keyMapDistTypo, keyTraits}

// criteria parses one criteria entry; nil on error.
func (l *loader) criteria(n *yaml.Node, trig, path string, isMatch bool, distNames []string) *Criteria {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, trig, path, "a criteria entry must be a mapping, not %s", describe(n))
		return nil
	}
	before := len(l.errs)
	c := &Criteria{Number: DefaultNumber, Line: n.Line, MapDistinguishedBy: map[string]string{}}
	fields := l.mapping(n, trig, path, criteriaKeys...)

	if f, ok := fields[keyEventType]; ok && !isNull(f.value) {
		l.eventTypes(c, f.value, trig, join(path, keyEventType))
	}
	if len(c.Include) == 0 {
		c.Include = []string{"*"}
		g, _ := stream.CompilePattern("*")
		c.types.Include = []stream.Pattern{g}
	}
	if f, ok := fields[keyNumber]; ok && !isNull(f.value) {
		var num int
		if f.value.Kind != yaml.ScalarNode || f.value.ShortTag() != "!!int" || f.value.Decode(&num) != nil || num < 0 {
			l.errorf(f.value, trig, join(path, keyNumber), "must be a non-negative integer, not %s", describe(f.value))
		} else {
			c.Number = num
		}
	}
	if f, ok := fields[keyTimestamp]; ok && !isNull(f.value) {
		c.Timestamp = l.expr(f.value, trig, join(path, keyTimestamp))
	}
	mapField, hasMap := fields[keyMapDist]
	if typo, ok := fields[keyMapDistTypo]; ok {
		if hasMap {
			l.errorf(typo.key, trig, join(path, keyMapDistTypo), "both %s and its misspelling %s are set", keyMapDist, keyMapDistTypo)
		} else {
			l.warn(typo.key, trig, join(path, keyMapDistTypo), "misspelled key: read as %s (please correct the spelling)", keyMapDist)
			mapField, hasMap = typo, true
		}
	}
	if hasMap && !isNull(mapField.value) {
		l.mapDistinguishedBy(c, mapField, trig, join(path, mapField.key.Value), isMatch, distNames)
	}
	if f, ok := fields[keyTraits]; ok && !isNull(f.value) {
		l.traits(c, f.value, trig, join(path, keyTraits))
	}
	if len(l.errs) > before {
		return nil
	}
	return c
}

func (l *loader) eventTypes(c *Criteria, v *yaml.Node, trig, path string) {
	var items []*yaml.Node
	switch v.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{v}
	case yaml.SequenceNode:
		items = v.Content
	default:
		l.errorf(v, trig, path, "must be an event-type pattern or a list of patterns, not %s", describe(v))
		return
	}
	for i, raw := range items {
		e := l.resolve(raw)
		if e == nil {
			return
		}
		p := path
		if v.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := scalarText(e)
		if !ok {
			l.errorf(e, trig, p, "must be an event-type pattern string, not %s", describe(e))
			continue
		}
		exclude := strings.HasPrefix(s, "!")
		pat := strings.TrimPrefix(s, "!")
		if pat == "" {
			l.errorf(e, trig, p, "empty event-type pattern")
			continue
		}
		g, err := stream.CompilePattern(pat)
		if err != nil {
			l.fail(e, trig, p, err)
			continue
		}
		if exclude {
			c.Exclude = append(c.Exclude, pat)
			c.types.Exclude = append(c.types.Exclude, g)
		} else {
			c.Include = append(c.Include, pat)
			c.types.Include = append(c.types.Include, g)
		}
	}
}

func (l *loader) mapDistinguishedBy(c *Criteria, f field, trig, path string, isMatch bool, distNames []string) {
	v := f.value
	if v.Kind != yaml.MappingNode {
		l.errorf(v, trig, path, "must map distinguishing trait names to event trait names, not %s", describe(v))
		return
	}
	fields := l.mapping(v, trig, path)
	for i := 0; i+1 < len(v.Content); i += 2 {
		name := v.Content[i].Value
		tf, ok := fields[name]
		if !ok || tf.key != l.resolve(v.Content[i]) {
			continue // reported by mapping
		}
		src, ok := scalarText(tf.value)
		if !ok || src == "" {
			l.errorf(tf.value, trig, join(path, name), "must be an event trait name, not %s", describe(tf.value))
			continue
		}
		c.MapDistinguishedBy[name] = src
		switch {
		case !isMatch:
			l.warn(tf.key, trig, join(path, name), "has no effect outside match_criteria")
		case !contains(distNames, name):
			l.warn(tf.key, trig, join(path, name), "has no effect: %q is not a distinguished_by trait", name)
		}
	}
}

func (l *loader) traits(c *Criteria, v *yaml.Node, trig, path string) {
	if v.Kind != yaml.MappingNode {
		l.errorf(v, trig, path, "must map trait names to criteria, not %s", describe(v))
		return
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, cv := l.resolve(v.Content[i]), l.resolve(v.Content[i+1])
		if k == nil || cv == nil {
			return
		}
		name, ok := scalarText(k)
		if !ok || name == "" {
			l.errorf(k, trig, path, "a trait name must be a string, not %s", describe(k))
			continue
		}
		p := join(path, name)
		if slicesContainsTrait(c.Traits, name) {
			l.errorf(k, trig, p, "trait criterion defined more than once")
			continue
		}
		tc, err := l.traitCriterion(cv, trig, p)
		if err != nil {
			l.fail(cv, trig, p, err)
			continue
		}
		if tc.Kind == 0 {
			continue // already reported (time expression)
		}
		tc.Trait = name
		c.Traits = append(c.Traits, tc)
	}
}

func slicesContainsTrait(tcs []TraitCriterion, name string) bool {
	for _, tc := range tcs {
		if tc.Trait == name {
			return true
		}
	}
	return false
}

// Names of criterion types in a traits block.
const (
	typeString   = "string"
	typeText     = "text"
	typeInt      = "int"
	typeFloat    = "float"
	typeDatetime = "datetime"
)

// traitCriterion parses one trait criterion. A zero Kind with a nil error
// means the problem was reported already.
func (l *loader) traitCriterion(v *yaml.Node, trig, path string) (TraitCriterion, error) {
	switch v.Kind {
	case yaml.ScalarNode:
		val, err := constant(v)
		if err != nil {
			return TraitCriterion{}, err
		}
		return TraitCriterion{Kind: KindEquals, Value: val}, nil
	case yaml.MappingNode:
	default:
		return TraitCriterion{}, fmt.Errorf("a %s can never equal a trait value (use a constant or a one-key mapping such as {int: \"> 3\"})", describe(v))
	}
	if len(v.Content) != 2 {
		return TraitCriterion{}, fmt.Errorf("only exactly one type of match is allowed per criterion expression, found %d", len(v.Content)/2)
	}
	k, arg := l.resolve(v.Content[0]), l.resolve(v.Content[1])
	if k == nil || arg == nil {
		return TraitCriterion{}, nil
	}
	typ, _ := scalarText(k)
	switch typ {
	case typeString, typeText:
		if arg.Kind != yaml.ScalarNode {
			return TraitCriterion{}, fmt.Errorf("%s: a %s can never equal a trait value", typ, describe(arg))
		}
		val, err := constant(arg)
		if err != nil {
			return TraitCriterion{}, fmt.Errorf("%s: %w", typ, err)
		}
		return TraitCriterion{Kind: KindEquals, Value: val}, nil
	case typeInt, typeFloat:
		if arg.Kind != yaml.ScalarNode {
			return TraitCriterion{}, fmt.Errorf("invalid numeric criterion: %s: want \"<op> <number>\" or a number, not %s", typ, describe(arg))
		}
		if arg.ShortTag() != "!!str" {
			val, err := constant(arg)
			if err != nil {
				return TraitCriterion{}, fmt.Errorf("invalid numeric criterion: %s: %w", typ, err)
			}
			if _, ok := val.Number(); !ok {
				return TraitCriterion{}, fmt.Errorf("invalid numeric criterion: %s: want a number, not %s", typ, describe(arg))
			}
			return TraitCriterion{Kind: KindEquals, Value: val}, nil
		}
		kind := KindInt
		if typ == typeFloat {
			kind = KindFloat
		}
		op, val, err := parseNumeric(arg.Value, kind)
		if err != nil {
			return TraitCriterion{}, err
		}
		return TraitCriterion{Kind: kind, Op: op, Value: val}, nil
	case typeDatetime:
		e := l.expr(arg, trig, join(path, typeDatetime))
		if e == nil {
			return TraitCriterion{}, nil
		}
		return TraitCriterion{Kind: KindDatetime, Expr: e}, nil
	}
	return TraitCriterion{}, fmt.Errorf("unknown criterion type %q (known: string, text, int, float, datetime)", k.Value)
}

// parseNumeric parses "<op> <number>" or "<number>" (operator "="): the
// text is trimmed and split at its first run of white space. The operator
// must be =, > or <.
func parseNumeric(s string, kind CriterionKind) (string, stream.Value, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", stream.Value{}, fmt.Errorf("invalid numeric criterion %q: empty", s)
	}
	op, operand := OpEqual, t
	if i := strings.IndexFunc(t, unicode.IsSpace); i >= 0 {
		op, operand = t[:i], strings.TrimSpace(t[i:])
		switch op {
		case OpEqual, OpGreater, OpLess:
		default:
			return "", stream.Value{}, fmt.Errorf("invalid numeric criterion %q: unsupported operator %q (use =, > or <)", s, op)
		}
	}
	if kind == KindInt {
		i, err := strconv.ParseInt(operand, 10, 64)
		if err != nil {
			return "", stream.Value{}, fmt.Errorf("invalid numeric criterion %q: want \"<op> <integer>\" with op =, > or < and a space after it", s)
		}
		return op, stream.Int(i), nil
	}
	if strings.ContainsAny(operand, "xX_") {
		return "", stream.Value{}, fmt.Errorf("invalid numeric criterion %q: want \"<op> <number>\" with op =, > or < and a space after it", s)
	}
	f, err := strconv.ParseFloat(operand, 64)
	if err != nil {
		return "", stream.Value{}, fmt.Errorf("invalid numeric criterion %q: want \"<op> <number>\" with op =, > or < and a space after it", s)
	}
	return op, stream.Float(f), nil
}

// constant converts a scalar node into an equality constant: strings,
// integers, floats and timestamps. Booleans and null are rejected: they
// are not trait values, so such a criterion could never match.
func constant(v *yaml.Node) (stream.Value, error) {
	switch v.ShortTag() {
	case "!!str":
		return stream.String(v.Value), nil
	case "!!int":
		if plainDecimal(v.Value) {
			if i, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
				return stream.Int(i), nil
			}
		}
		var i int64 // other YAML forms: 0x1F, 0o17, 1_000
		if err := v.Decode(&i); err != nil {
			return stream.Value{}, fmt.Errorf("integer %s out of range", v.Value)
		}
		return stream.Int(i), nil
	case "!!float":
		if f, err := strconv.ParseFloat(v.Value, 64); err == nil {
			return stream.Float(f), nil
		}
		var f float64 // other YAML forms: .inf, .nan
		if err := v.Decode(&f); err != nil {
			return stream.Value{}, fmt.Errorf("invalid number %s", v.Value)
		}
		return stream.Float(f), nil
	case "!!timestamp":
		var t time.Time
		if err := v.Decode(&t); err != nil {
			return stream.Value{}, fmt.Errorf("invalid timestamp %s", v.Value)
		}
		return stream.Datetime(t), nil
	case "!!bool":
		return stream.Value{}, fmt.Errorf("boolean %s can never match: booleans are not trait values", v.Value)
	case "!!null":
		return stream.Value{}, errors.New("null can never match: null traits are absent")
	}
	return stream.Value{}, fmt.Errorf("unsupported value %s", describe(v))
}

// plainDecimal reports whether s is a decimal integer without leading
// zeros, read the same by strconv and YAML.
func plainDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// scalarText returns the text of a string, number or timestamp scalar
// (names may be written unquoted, like 2014, 42 or 2014-08-01).
func scalarText(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!timestamp":
		return n.Value, true
	}
	return "", false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's type for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		case "!!timestamp":
			return "the timestamp " + n.Value
		}
		return fmt.Sprintf("a %s value", n.ShortTag())
	}
	return "an unsupported node"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closest returns the candidate within a small edit distance of s, or "".
func closest(s string, candidates []string) string {
	best, bestDist := "", 3 // suggest only for up to two edits
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (in bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
