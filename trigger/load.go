package trigger

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/winchester-go/winchester/internal/yamlfile"
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
	keyOnChange        = "on_change"
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
// (all parsed here, once, and checked for unknown functions and
// variables). Unknown keys are errors, with the closest known key
// suggested, except the misspelling map_distingushed_by, accepted as
// map_distinguished_by with a warning. YAML anchors, aliases and merge keys
// are resolved. Duplicate trigger names are errors.
//
// All problems found are returned together, joined with errors.Join; each
// is a *DefinitionError (use errors.As to get the first). On error no
// definitions are returned. Warnings are returned in either case.
func Parse(file string, data []byte) ([]*Definition, []Warning, error) {
	l := &loader{file: file}
	root, perr := yamlfile.Parse(data)
	if perr != nil {
		return nil, nil, &DefinitionError{File: file, Line: perr.Line, Err: perr.Err}
	}
	var defs []*Definition
	switch {
	case root == nil:
	case root.Kind != yaml.SequenceNode:
		l.errorf(root, "", "", "a triggers file must be a list of trigger definitions, not %s", yamlfile.Describe(root))
	default:
		first := map[string]*Definition{}
		for _, item := range root.Content {
			d := l.definition(yamlfile.Resolve(item))
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

// loader collects the problems of one file.
type loader struct {
	file  string
	errs  []error
	warns []Warning
}

func (l *loader) errorf(n *yaml.Node, trig, field, format string, args ...any) {
	l.fail(n, trig, field, fmt.Errorf(format, args...))
}

func (l *loader) fail(n *yaml.Node, trig, field string, err error) {
	line := 0
	if n != nil {
		line = n.Line
	}
	l.errs = append(l.errs, &DefinitionError{File: l.file, Line: line, Trigger: trig, Field: field, Err: err})
}

func (l *loader) warn(n *yaml.Node, trig, field, format string, args ...any) {
	l.warns = append(l.warns, Warning{File: l.file, Line: n.Line, Trigger: trig, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// mapping returns the fields of a mapping node by key, merge keys
// resolved, reporting duplicate and unknown keys as problems of trigger
// trig at path.
func (l *loader) mapping(n *yaml.Node, trig, path string, keys yamlfile.Keys) map[string]yamlfile.Field {
	fields, errs := yamlfile.Mapping(n, keys)
	l.keyErrors(errs, trig, path)
	out := make(map[string]yamlfile.Field, len(fields))
	for _, f := range fields {
		out[f.Name] = f
	}
	return out
}

// fields returns the fields of a mapping node in order, merge keys
// resolved, with any key allowed; duplicate keys are reported.
func (l *loader) fields(n *yaml.Node, trig, path string) []yamlfile.Field {
	fields, errs := yamlfile.Mapping(n, yamlfile.Keys{})
	l.keyErrors(errs, trig, path)
	return fields
}

// keyErrors reports the problems of yamlfile.Mapping.
func (l *loader) keyErrors(errs []*yamlfile.Error, trig, path string) {
	for _, e := range errs {
		l.errs = append(l.errs, &DefinitionError{File: l.file, Line: e.Line, Trigger: trig, Field: join(path, e.Key), Err: e.Err})
	}
}

var definitionKeys = yamlfile.Strict(
	keyName, keyDebugLevel, keyDistinguishedBy, keyExpiration, keyFireDelay,
	keyFirePipeline, keyExpirePipeline, keyMatchCriteria, keyFireCriteria, keyLoadCriteria,
	keyOnChange,
)

// definition parses one trigger definition; nil when it has errors.
func (l *loader) definition(n *yaml.Node) *Definition {
	before := len(l.errs)
	if n.Kind != yaml.MappingNode {
		l.errorf(n, "", "", "a trigger definition must be a mapping, not %s", yamlfile.Describe(n))
		return nil
	}
	list, keyErrs := yamlfile.Mapping(n, definitionKeys)
	fields := make(map[string]yamlfile.Field, len(list))
	for _, f := range list {
		fields[f.Name] = f
	}
	// The name first: every other message names the trigger.
	d := &Definition{File: l.file, Line: n.Line, DebugLevel: DefaultDebugLevel, FireDelay: DefaultFireDelay, OnChange: Keep}
	if f, ok := fields[keyName]; ok {
		if s, ok := scalarText(f.Value); ok && s != "" {
			d.Name = s
		} else {
			l.errorf(f.Value, "", keyName, "must be a non-empty string, not %s", yamlfile.Describe(f.Value))
		}
	} else {
		l.errorf(n, "", keyName, "required field in trigger definition not specified")
	}
	trig := d.Name
	l.keyErrors(keyErrs, trig, "")

	if f, ok := fields[keyDebugLevel]; ok && !yamlfile.IsNull(f.Value) {
		d.DebugLevel = l.debugLevel(f.Value, trig)
	}
	if f, ok := fields[keyDistinguishedBy]; ok {
		d.DistinguishedBy = l.distinguishedBy(f.Value, trig)
	}
	if f, ok := fields[keyExpiration]; ok && !yamlfile.IsNull(f.Value) {
		d.Expiration = l.expr(f.Value, trig, keyExpiration, expirationVars)
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
	if f, ok := fields[keyFireDelay]; ok && !yamlfile.IsNull(f.Value) {
		d.FireDelay = l.fireDelay(f.Value, trig)
	}
	if f, ok := fields[keyOnChange]; ok && !yamlfile.IsNull(f.Value) {
		p, err := ParseChangePolicy(f.Value.Value)
		if f.Value.Kind != yaml.ScalarNode || err != nil {
			l.errorf(f.Value, trig, keyOnChange, "must be keep, expire or fire, not %s", yamlfile.Describe(f.Value))
		}
		d.OnChange = p
	}
	d.texts = make(map[string]string, len(list))
	for _, f := range list {
		d.texts[f.Name] = yamlfile.Canonical(f.Value)
	}
	if len(l.errs) > before {
		return nil
	}
	return d
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
		l.errorf(v, trig, keyDebugLevel, "must be an integer 0, 1 or 2, not %s", yamlfile.Describe(v))
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
	case yamlfile.IsNull(v):
		return nil
	case v.Kind == yaml.ScalarNode:
		l.errorf(v, trig, keyDistinguishedBy, "must be a list of trait names or {trait: expression} mappings, not the string %q (write [%s])", v.Value, v.Value)
		return nil
	case v.Kind != yaml.SequenceNode:
		l.errorf(v, trig, keyDistinguishedBy, "must be a list of trait names or {trait: expression} mappings, not %s", yamlfile.Describe(v))
		return nil
	}
	var out []Distinguisher
	seen := map[string]int{}
	for i, raw := range v.Content {
		e := yamlfile.Resolve(raw)
		path := fmt.Sprintf("%s[%d]", keyDistinguishedBy, i)
		var dist Distinguisher
		switch e.Kind {
		case yaml.ScalarNode:
			s, ok := scalarText(e)
			if !ok || s == "" {
				l.errorf(e, trig, path, "must be a trait name or a {trait: expression} mapping, not %s", yamlfile.Describe(e))
				continue
			}
			dist.Trait = s
		case yaml.MappingNode:
			fields, keyErrs := yamlfile.Mapping(e, yamlfile.Keys{})
			l.keyErrors(keyErrs, trig, path)
			if len(keyErrs) > 0 {
				continue
			}
			if len(fields) != 1 {
				l.errorf(e, trig, path, "a distinguishing expression must map exactly one trait to an expression, not %d", len(fields))
				continue
			}
			k, ev := fields[0].Key, fields[0].Value
			s, ok := scalarText(k)
			if !ok || s == "" {
				l.errorf(k, trig, path, "the trait name must be a string, not %s", yamlfile.Describe(k))
				continue
			}
			dist.Trait = s
			dist.Expr = l.expr(ev, trig, path+"."+s, distinguisherVars)
			if dist.Expr == nil {
				continue
			}
		default:
			l.errorf(e, trig, path, "must be a trait name or a {trait: expression} mapping, not %s", yamlfile.Describe(e))
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

// Variables of the time expressions, by where they are evaluated.
// $timestamp is always available. Criteria expressions see the event's
// datetime traits, which are not known at load: only their functions are
// checked.
var (
	expirationVars    = []string{"first", "last"}
	distinguisherVars = []string{}
	criteriaVars      []string
)

// expr parses a time expression field and checks that its functions and
// variables (with vars, see timex.Expr.Check) exist, so that it cannot
// fail on every event at run time; nil on error.
func (l *loader) expr(v *yaml.Node, trig, path string, vars []string) *timex.Expr {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		l.errorf(v, trig, path, "must be a time expression string, not %s", yamlfile.Describe(v))
		return nil
	}
	e, err := timex.Parse(v.Value)
	if err != nil {
		l.fail(v, trig, path, fmt.Errorf("time expression %q: %w", v.Value, err))
		return nil
	}
	if err := e.Check(vars); err != nil {
		for _, p := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ne *timex.NameError
			if errors.As(p, &ne) {
				if guess := yamlfile.Closest(ne.Name, ne.Known); guess != "" {
					if !ne.Func {
						guess = "$" + guess
					}
					p = fmt.Errorf("%w; did you mean %s?", p, guess)
				}
			}
			l.fail(v, trig, path, p)
		}
		return nil
	}
	return e
}

func (l *loader) pipeline(fields map[string]yamlfile.Field, key, trig string) string {
	f, ok := fields[key]
	if !ok || yamlfile.IsNull(f.Value) {
		return ""
	}
	if f.Value.Kind != yaml.ScalarNode || f.Value.ShortTag() != "!!str" {
		l.errorf(f.Value, trig, key, "must be a pipeline name, not %s", yamlfile.Describe(f.Value))
		return ""
	}
	return f.Value.Value
}

func (l *loader) fireDelay(v *yaml.Node, trig string) time.Duration {
	var secs float64
	if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!int" || v.ShortTag() == "!!float") {
		if err := v.Decode(&secs); err != nil {
			secs = math.NaN()
		}
	} else {
		l.errorf(v, trig, keyFireDelay, "must be a number of seconds, not %s", yamlfile.Describe(v))
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
func (l *loader) criteriaList(def *yaml.Node, fields map[string]yamlfile.Field, key, trig string, required bool, distNames []string) []*Criteria {
	f, ok := fields[key]
	if !ok || yamlfile.IsNull(f.Value) {
		if required {
			l.errorf(def, trig, key, "required criteria in trigger definition not specified")
		}
		return nil
	}
	if f.Value.Kind != yaml.SequenceNode {
		l.errorf(f.Value, trig, key, "must be a list of criteria, not %s", yamlfile.Describe(f.Value))
		return nil
	}
	if key == keyMatchCriteria && len(f.Value.Content) == 0 {
		l.errorf(f.Value, trig, key, "empty: the trigger would never match an event (give at least one criteria entry; {} matches every event)")
		return nil
	}
	out := make([]*Criteria, 0, len(f.Value.Content))
	for i, raw := range f.Value.Content {
		c := l.criteria(yamlfile.Resolve(raw), trig, fmt.Sprintf("%s[%d]", key, i), key == keyMatchCriteria, distNames)
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

var criteriaKeys = yamlfile.Keys{
	Known:  []string{keyEventType, keyNumber, keyTimestamp, keyMapDist, keyTraits},
	Hidden: []string{keyMapDistTypo},
}

// criteria parses one criteria entry; nil on error.
func (l *loader) criteria(n *yaml.Node, trig, path string, isMatch bool, distNames []string) *Criteria {
	if n.Kind != yaml.MappingNode {
		l.errorf(n, trig, path, "a criteria entry must be a mapping, not %s", yamlfile.Describe(n))
		return nil
	}
	before := len(l.errs)
	c := &Criteria{Number: DefaultNumber, Line: n.Line, MapDistinguishedBy: map[string]string{}}
	fields := l.mapping(n, trig, path, criteriaKeys)

	if f, ok := fields[keyEventType]; ok && !yamlfile.IsNull(f.Value) {
		l.eventTypes(c, f.Value, trig, join(path, keyEventType))
	}
	if len(c.Include) == 0 {
		c.Include = []string{"*"}
		g, _ := stream.CompilePattern("*")
		c.types.Include = []stream.Pattern{g}
	}
	if f, ok := fields[keyNumber]; ok && !yamlfile.IsNull(f.Value) {
		var num int
		if f.Value.Kind != yaml.ScalarNode || f.Value.ShortTag() != "!!int" || f.Value.Decode(&num) != nil || num < 0 {
			l.errorf(f.Value, trig, join(path, keyNumber), "must be a non-negative integer, not %s", yamlfile.Describe(f.Value))
		} else {
			c.Number = num
		}
	}
	if f, ok := fields[keyTimestamp]; ok && !yamlfile.IsNull(f.Value) {
		c.Timestamp = l.expr(f.Value, trig, join(path, keyTimestamp), criteriaVars)
	}
	mapField, hasMap := fields[keyMapDist]
	if typo, ok := fields[keyMapDistTypo]; ok {
		if hasMap {
			l.errorf(typo.Key, trig, join(path, keyMapDistTypo), "both %s and its misspelling %s are set", keyMapDist, keyMapDistTypo)
		} else {
			l.warn(typo.Key, trig, join(path, keyMapDistTypo), "misspelled key: read as %s (please correct the spelling)", keyMapDist)
			mapField, hasMap = typo, true
		}
	}
	if hasMap && !yamlfile.IsNull(mapField.Value) {
		l.mapDistinguishedBy(c, mapField, trig, join(path, mapField.Key.Value), isMatch, distNames)
	}
	if f, ok := fields[keyTraits]; ok && !yamlfile.IsNull(f.Value) {
		l.traits(c, f.Value, trig, join(path, keyTraits))
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
		l.errorf(v, trig, path, "must be an event-type pattern or a list of patterns, not %s", yamlfile.Describe(v))
		return
	}
	for i, raw := range items {
		e := yamlfile.Resolve(raw)
		p := path
		if v.Kind == yaml.SequenceNode {
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		s, ok := scalarText(e)
		if !ok {
			l.errorf(e, trig, p, "must be an event-type pattern string, not %s", yamlfile.Describe(e))
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

func (l *loader) mapDistinguishedBy(c *Criteria, f yamlfile.Field, trig, path string, isMatch bool, distNames []string) {
	v := f.Value
	if v.Kind != yaml.MappingNode {
		l.errorf(v, trig, path, "must map distinguishing trait names to event trait names, not %s", yamlfile.Describe(v))
		return
	}
	for _, tf := range l.fields(v, trig, path) {
		name := tf.Name
		src, ok := scalarText(tf.Value)
		if !ok || src == "" {
			l.errorf(tf.Value, trig, join(path, name), "must be an event trait name, not %s", yamlfile.Describe(tf.Value))
			continue
		}
		c.MapDistinguishedBy[name] = src
		switch {
		case !isMatch:
			l.warn(tf.Key, trig, join(path, name), "has no effect outside match_criteria")
		case !slices.Contains(distNames, name):
			l.warn(tf.Key, trig, join(path, name), "has no effect: %q is not a distinguished_by trait", name)
		}
	}
}

func (l *loader) traits(c *Criteria, v *yaml.Node, trig, path string) {
	if v.Kind != yaml.MappingNode {
		l.errorf(v, trig, path, "must map trait names to criteria, not %s", yamlfile.Describe(v))
		return
	}
	for _, f := range l.fields(v, trig, path) {
		k, cv := f.Key, f.Value
		name, ok := scalarText(k)
		if !ok || name == "" {
			l.errorf(k, trig, path, "a trait name must be a string, not %s", yamlfile.Describe(k))
			continue
		}
		p := join(path, name)
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
		return TraitCriterion{}, fmt.Errorf("a %s can never equal a trait value (use a constant or a one-key mapping such as {int: \"> 3\"})", yamlfile.Describe(v))
	}
	fields, keyErrs := yamlfile.Mapping(v, yamlfile.Keys{})
	l.keyErrors(keyErrs, trig, path)
	if len(keyErrs) > 0 {
		return TraitCriterion{}, nil
	}
	if len(fields) != 1 {
		return TraitCriterion{}, fmt.Errorf("only exactly one type of match is allowed per criterion expression, found %d", len(fields))
	}
	k, arg := fields[0].Key, fields[0].Value
	typ, _ := scalarText(k)
	switch typ {
	case typeString, typeText:
		if arg.Kind != yaml.ScalarNode {
			return TraitCriterion{}, fmt.Errorf("%s: a %s can never equal a trait value", typ, yamlfile.Describe(arg))
		}
		val, err := constant(arg)
		if err != nil {
			return TraitCriterion{}, fmt.Errorf("%s: %w", typ, err)
		}
		return TraitCriterion{Kind: KindEquals, Value: val}, nil
	case typeInt, typeFloat:
		if arg.Kind != yaml.ScalarNode {
			return TraitCriterion{}, fmt.Errorf("invalid numeric criterion: %s: want \"<op> <number>\" or a number, not %s", typ, yamlfile.Describe(arg))
		}
		kind := KindInt
		if typ == typeFloat {
			kind = KindFloat
		}
		if arg.ShortTag() != "!!str" {
			// As in the original: operator "=" and the value as written,
			// not converted ({float: 4} compares with the int 4, which
			// equals 4.0; {int: 2014-08-01} with that instant).
			val, err := constant(arg)
			if err != nil {
				return TraitCriterion{}, fmt.Errorf("invalid numeric criterion: %s: %w", typ, err)
			}
			return TraitCriterion{Kind: kind, Op: OpEqual, Value: val}, nil
		}
		op, val, err := parseNumeric(arg.Value, kind)
		if err != nil {
			return TraitCriterion{}, err
		}
		return TraitCriterion{Kind: kind, Op: op, Value: val}, nil
	case typeDatetime:
		e := l.expr(arg, trig, join(path, typeDatetime), criteriaVars)
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
	return stream.Value{}, fmt.Errorf("unsupported value %s", yamlfile.Describe(v))
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

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
