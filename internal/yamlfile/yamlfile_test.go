package yamlfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// problem is the comparable part of an *Error.
type problem struct {
	Line int
	Key  string
	Msg  string // a substring of the message
}

func problems(t *testing.T, errs []*Error) []problem {
	t.Helper()
	out := make([]problem, len(errs))
	for i, e := range errs {
		out[i] = problem{Line: e.Line, Key: e.Key, Msg: e.Err.Error()}
	}
	return out
}

// matchProblems compares got with want, where want's messages are
// substrings.
func matchProblems(t *testing.T, what string, got []*Error, want []problem) {
	t.Helper()
	gp := problems(t, got)
	ok := len(gp) == len(want)
	for i := 0; ok && i < len(gp); i++ {
		ok = gp[i].Line == want[i].Line && gp[i].Key == want[i].Key && strings.Contains(gp[i].Msg, want[i].Msg)
	}
	if !ok {
		t.Errorf("%s problems = %+v, want %+v", what, gp, want)
	}
}

func mustParse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	n, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return n
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		src      string
		wantNil  bool
		wantLine int
		wantErr  string // substring; "" for success
	}{
		{name: "empty", src: "", wantNil: true},
		{name: "comments only", src: "# nothing\n", wantNil: true},
		{name: "document marker only", src: "---\n", wantNil: true},
		{name: "null", src: "~\n", wantNil: true},
		{name: "mapping", src: "a: 1\n"},
		{name: "aliased root", src: "&r [1]\n"},
		{name: "syntax error", src: "a: 1\nb: [\n", wantLine: 2, wantErr: "invalid YAML: did not find expected node content"},
		{name: "syntax error in a mapping", src: "a: 1\n  b: 2\n", wantLine: 2, wantErr: "invalid YAML: mapping values are not allowed in this context"},
		{name: "tab indentation", src: "a:\n\tb: 1\n", wantLine: 2, wantErr: "invalid YAML: found character that cannot start any token"},
		{name: "unknown anchor", src: "a: *nope\n", wantLine: 0, wantErr: "invalid YAML: unknown anchor 'nope' referenced"},
		{name: "two documents", src: "a: 1\n---\nb: 2\n", wantLine: 2, wantErr: "more than one YAML document"},
		{name: "broken second document", src: "a: 1\n---\nb: [\n", wantLine: 3, wantErr: "invalid YAML"},
		{name: "alias inside its own anchor", src: "a: &x [1, *x]\n", wantLine: 1, wantErr: "alias *x refers to a node that contains it"},
		{name: "merge of itself", src: "a: &x {b: 1, <<: *x}\n", wantLine: 1, wantErr: "refers to a node that contains it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse([]byte(tc.src))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tc.src, err)
				}
				if (n == nil) != tc.wantNil {
					t.Fatalf("Parse(%q) = %v, want nil: %v", tc.src, n, tc.wantNil)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Line != tc.wantLine || !strings.Contains(e.Err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) = %v (%#v), want an *Error at line %d containing %q", tc.src, err, err, tc.wantLine, tc.wantErr)
			}
			if strings.HasPrefix(tc.wantErr, "invalid YAML") {
				var se *SyntaxError
				if !errors.As(err, &se) || strings.Contains(se.Msg, "line ") || strings.HasPrefix(se.Msg, "yaml:") {
					t.Errorf("Parse(%q) = %v, want a *SyntaxError without position or prefix", tc.src, err)
				}
			}
		})
	}
}

// billionLaughs nests levels lists of ten aliases of the level below.
func billionLaughs(levels int) string {
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestParseBoundsAliasExpansion(t *testing.T) {
	t.Parallel()
	if _, err := Parse([]byte(billionLaughs(3))); err != nil {
		t.Fatalf("Parse of a small alias tree: %v", err)
	}
	start := time.Now()
	_, err := Parse([]byte(billionLaughs(9)))
	if !errors.Is(err, ErrTooComplex) {
		t.Fatalf("Parse of a billion laughs = %v, want ErrTooComplex", err)
	}
	t.Logf("rejected in %v", time.Since(start))

	// Merge keys are aliases too.
	var b strings.Builder
	b.WriteString("m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "m%d: &m%d\n", i, i)
		for j := range 8 {
			fmt.Fprintf(&b, "  k%d: {<<: *m%d}\n", j, i-1)
		}
	}
	if _, err := Parse([]byte(b.String())); !errors.Is(err, ErrTooComplex) {
		t.Fatalf("Parse of nested merges = %v, want ErrTooComplex", err)
	}
}

func TestMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		src    string
		keys   Keys
		fields []string // "name=value"
		want   []problem
	}{
		{
			name:   "any key",
			src:    "b: 1\na: 2\n",
			fields: []string{"b=1", "a=2"},
		},
		{
			name:   "known keys",
			src:    "name: x\nexpiration: y\n",
			keys:   Strict("name", "expiration"),
			fields: []string{"name=x", "expiration=y"},
		},
		{
			name:   "did you mean",
			src:    "name: x\nexpiraton: y\n",
			keys:   Strict("name", "expiration"),
			fields: []string{"name=x"},
			want:   []problem{{Line: 2, Key: "expiraton", Msg: "unknown key (did you mean expiration?)"}},
		},
		{
			name:   "nothing close",
			src:    "owner: me\n",
			keys:   Strict("name", "expiration"),
			fields: nil,
			want:   []problem{{Line: 1, Key: "owner", Msg: "unknown key (known keys: name, expiration)"}},
		},
		{
			name:   "hidden keys are accepted and not suggested",
			src:    "colour: red\ncolr: blue\n",
			keys:   Keys{Known: []string{"color"}, Hidden: []string{"colour"}},
			fields: []string{"colour=red"},
			want:   []problem{{Line: 2, Key: "colr", Msg: "unknown key (did you mean color?)"}},
		},
		{
			name: "no keys allowed",
			src:  "a: 1\n",
			keys: Strict(),
			want: []problem{{Line: 1, Key: "a", Msg: "no keys are allowed"}},
		},
		{
			name:   "duplicate",
			src:    "a: 1\nb: 2\na: 3\n",
			fields: []string{"a=1", "b=2"},
			want:   []problem{{Line: 3, Key: "a", Msg: "key defined more than once (first on line 1)"}},
		},
		{
			name:   "non-scalar key",
			src:    "? [a]\n: 1\nb: 2\n",
			fields: []string{"b=2"},
			want:   []problem{{Line: 1, Msg: "a key must be a string, not a list"}},
		},
		{
			name:   "merge: explicit keys win, wherever the merge is written",
			src:    "base: &b {a: 1, b: 2}\nm:\n  <<: *b\n  a: 9\n",
			fields: []string{"a=9", "b=2"},
		},
		{
			name:   "merge list: the earlier mapping wins",
			src:    "x: &x {a: 1}\ny: &y {a: 2, b: 2}\nm: {<<: [*x, *y], c: 3}\n",
			fields: []string{"c=3", "a=1", "b=2"},
		},
		{
			name:   "nested merge",
			src:    "x: &x {a: 1}\ny: &y {<<: *x, b: 2}\nm: {<<: *y}\n",
			fields: []string{"b=2", "a=1"},
		},
		{
			name:   "merged keys are checked",
			src:    "x: &x {nme: 1}\nm: {<<: *x, expiration: 2}\n",
			keys:   Strict("name", "expiration"),
			fields: []string{"expiration=2"},
			want:   []problem{{Line: 1, Key: "nme", Msg: "did you mean name?"}},
		},
		{
			name: "merge of a scalar",
			src:  "m:\n  <<: 3\n",
			want: []problem{{Line: 2, Msg: "a merge key (<<) takes a mapping or a list of mappings, not the integer 3"}},
		},
		{
			name:   "a quoted << is a plain key",
			src:    "m: {'<<': 1}\n",
			fields: []string{"<<=1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := mustParse(t, tc.src)
			n := root
			if f, ok := Lookup(mustFields(t, root), "m"); ok {
				n = f.Value
			}
			fields, errs := Mapping(n, tc.keys)
			var got []string
			for _, f := range fields {
				got = append(got, f.Name+"="+f.Value.Value)
			}
			if n != root || len(tc.fields) > 0 {
				if d := cmp.Diff(tc.fields, got); d != "" {
					t.Errorf("fields mismatch (-want +got):\n%s", d)
				}
			}
			matchProblems(t, "Mapping", errs, tc.want)
		})
	}
}

func mustFields(t *testing.T, n *yaml.Node) []Field {
	t.Helper()
	if n.Kind != yaml.MappingNode {
		return nil
	}
	f, _ := Mapping(n, Keys{})
	return f
}

func TestClosest(t *testing.T) {
	t.Parallel()
	known := []string{"fire_pipeline", "expire_pipeline", "url", "traits"}
	tests := []struct{ in, want string }{
		{"fire_pipline", "fire_pipeline"},
		{"expire_pipelines", "expire_pipeline"},
		{"urll", "url"},
		{"trait", "traits"},
		{"owner", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := Closest(tc.in, known); got != tc.want {
			t.Errorf("Closest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type seconds time.Duration

func (s *seconds) UnmarshalYAML(n *yaml.Node) error {
	var f float64
	if err := n.Decode(&f); err != nil {
		return errors.New("must be a number of seconds")
	}
	*s = seconds(f * float64(time.Second))
	return nil
}

type inner struct {
	URL  string `yaml:"url"`
	Echo bool   `yaml:"echo"`
}

type sample struct {
	Name    string            `yaml:"name"`
	Count   int               `yaml:"count"`
	Small   int8              `yaml:"small"`
	Limit   *int              `yaml:"limit"`
	Ratio   float64           `yaml:"ratio"`
	Tags    []string          `yaml:"tags"`
	Labels  map[string]string `yaml:"labels"`
	Extra   any               `yaml:"extra"`
	Wait    seconds           `yaml:"wait"`
	Inner   inner             `yaml:"inner"`
	Skipped string            `yaml:"-"`
	private string
}

func TestDecode(t *testing.T) {
	t.Parallel()
	five := 5
	tests := []struct {
		name  string
		src   string
		start sample
		want  sample
		paths []string
		errs  []problem
	}{
		{
			name: "every kind",
			src: "name: n\ncount: 3\nlimit: 5\nratio: 0.5\ntags: [a, b]\nlabels: {x: y}\nextra: {k: [1]}\n" +
				"wait: 1.5\ninner: {url: u, echo: true}\n",
			want: sample{Name: "n", Count: 3, Limit: &five, Ratio: 0.5, Tags: []string{"a", "b"},
				Labels: map[string]string{"x": "y"}, Extra: map[string]any{"k": []any{1}},
				Wait: seconds(1500 * time.Millisecond), Inner: inner{URL: "u", Echo: true}},
			paths: []string{"name", "count", "limit", "ratio", "tags", "labels", "labels.x", "extra", "wait", "inner", "inner.url", "inner.echo"},
		},
		{
			name:  "null leaves the value",
			src:   "name: ~\ncount:\n",
			start: sample{Name: "default", Count: 7},
			want:  sample{Name: "default", Count: 7},
		},
		{
			name:  "merge keys",
			src:   "base: &b {url: u}\nname: n\ninner: {<<: *b, echo: true}\n",
			want:  sample{Name: "n", Inner: inner{URL: "u", Echo: true}},
			paths: []string{"name", "inner", "inner.echo", "inner.url"},
			errs:  []problem{{Line: 1, Key: "base", Msg: "unknown key"}},
		},
		{
			name: "every problem, with its line and path",
			src: "nme: x\ncount: lots\nlimit: [1]\nratio: fast\ntags: [a, [b]]\nlabels: {x: {y: z}}\n" +
				"wait: soon\ninner: {url: u, ech: true}\ncount: 4\nSkipped: x\nprivate: y\n",
			want:  sample{Tags: []string{"a", ""}, Labels: map[string]string{"x": ""}, Inner: inner{URL: "u"}},
			paths: []string{"count", "limit", "ratio", "tags", "labels", "labels.x", "wait", "inner", "inner.url"},
			errs: []problem{
				{Line: 1, Key: "nme", Msg: "unknown key (did you mean name?)"},
				{Line: 2, Key: "count", Msg: `must be an integer, not the string "lots"`},
				{Line: 3, Key: "limit", Msg: "must be an integer, not a list"},
				{Line: 4, Key: "ratio", Msg: `must be a number, not the string "fast"`},
				{Line: 5, Key: "tags[1]", Msg: "must be a string, not a list"},
				{Line: 6, Key: "labels.x", Msg: "must be a string, not a mapping"},
				{Line: 7, Key: "wait", Msg: "must be a number of seconds"},
				{Line: 8, Key: "inner.ech", Msg: "unknown key (did you mean echo?)"},
				{Line: 9, Key: "count", Msg: "key defined more than once (first on line 2)"},
				{Line: 10, Key: "Skipped", Msg: "unknown key"},
				{Line: 11, Key: "private", Msg: "unknown key"},
			},
		},
		{
			name:  "integer too large for any integer",
			src:   "count: 99999999999999999999999\n",
			paths: []string{"count"},
			errs:  []problem{{Line: 1, Key: "count", Msg: "must be an integer, not the number"}},
		},
		{
			name:  "integer out of range of its type",
			src:   "small: 300\n",
			paths: []string{"small"},
			errs:  []problem{{Line: 1, Key: "small", Msg: "integer 300 out of range for int8"}},
		},
		{
			name: "not a mapping",
			src:  "[1, 2]\n",
			errs: []problem{{Line: 1, Msg: "must be a mapping, not a list"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.start
			var paths []string
			d := Decoder{Field: func(path string, key *yaml.Node) { paths = append(paths, path) }}
			errs := d.Decode(mustParse(t, tc.src), &got)
			matchProblems(t, "Decode", errs, tc.errs)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(sample{})); diff != "" {
				t.Errorf("Decode result mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.paths, paths); diff != "" {
				t.Errorf("Field paths mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeNeedsAPointer(t *testing.T) {
	t.Parallel()
	if errs := Decode(mustParse(t, "a: 1\n"), sample{}); len(errs) != 1 {
		t.Errorf("Decode into a non-pointer = %v, want one error", errs)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	root := mustParse(t, "[a, 3, 1.5, true, ~, 2014-08-01, [x], {k: v}, !!binary aGk=]\n")
	want := []string{`the string "a"`, "the integer 3", "the number 1.5", "the boolean true", "null",
		"the timestamp 2014-08-01", "a list", "a mapping", "a !!binary value"}
	var got []string
	for _, n := range root.Content {
		got = append(got, Describe(n))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Describe mismatch (-want +got):\n%s", d)
	}
}

// entry decodes itself with Decode and reports its problems with Join, as
// the consumers of winchester.yaml do.
type entry struct {
	Name string `yaml:"name"`
	Line int    `yaml:"-"`
}

func (e *entry) UnmarshalYAML(n *yaml.Node) error {
	type plain entry
	var p plain
	if err := Join(Decode(n, &p)); err != nil {
		return err
	}
	*e = entry(p)
	e.Line = n.Line
	return nil
}

func TestDecodeNestedUnmarshalerProblemsInPlace(t *testing.T) {
	t.Parallel()
	var v struct {
		Entries []entry `yaml:"entries"`
	}
	errs := Decode(mustParse(t, "entries:\n- name: a\n- nme: b\n  name: [c]\n"), &v)
	matchProblems(t, "Decode", errs, []problem{
		{Line: 3, Key: "entries[1].nme", Msg: "unknown key (did you mean name?)"},
		{Line: 4, Key: "entries[1].name", Msg: "must be a string, not a list"},
	})
	if len(v.Entries) != 2 || v.Entries[0].Name != "a" || v.Entries[0].Line != 2 {
		t.Errorf("entries = %+v, want a at line 2 first", v.Entries)
	}
	var e entry
	err := yaml.Unmarshal([]byte("nme: b\n"), &e)
	if err == nil || err.Error() != "line 1: nme: unknown key (did you mean name?)" {
		t.Errorf("yaml.Unmarshal of a bad entry = %v, want its problem with line and key", err)
	}
}

func TestDecodeDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src     string
		want    time.Duration
		wantErr string
	}{
		{src: "10", want: 10 * time.Second},
		{src: "0.5", want: 500 * time.Millisecond},
		{src: "30s", want: 30 * time.Second},
		{src: "1h30m", want: 90 * time.Minute},
		{src: "soon", wantErr: `invalid duration "soon"`},
		{src: "1e300", wantErr: "invalid duration 1e300"},
		{src: ".nan", wantErr: "invalid duration .nan"},
		{src: "[1]", wantErr: "must be a number of seconds or a duration like 30s, not a list"},
		{src: "true", wantErr: `invalid duration "true"`},
	}
	for _, tc := range tests {
		got, err := DecodeDuration(mustParse(t, tc.src))
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("DecodeDuration(%s) = %v, %v; want error %q", tc.src, got, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("DecodeDuration(%s) = %v, %v; want %v", tc.src, got, err, tc.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Line: 3, Key: "a.b", Err: errors.New("bad")}, "line 3: a.b: bad"},
		{&Error{Line: 3, Err: errors.New("bad")}, "line 3: bad"},
		{&Error{Key: "a", Err: errors.New("bad")}, "a: bad"},
		{&Error{Err: &SyntaxError{Msg: "oops"}}, "invalid YAML: oops"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if Join(nil) != nil {
		t.Error("Join(nil) is not nil")
	}
}

func TestWhere(t *testing.T) {
	for _, tc := range []struct {
		file string
		line int
		want string
	}{
		{"f.yaml", 3, "f.yaml:3: "},
		{"f.yaml", 0, "f.yaml: "},
		{"", 3, "line 3: "},
		{"", 0, ""},
	} {
		if got := Where(tc.file, tc.line); got != tc.want {
			t.Errorf("Where(%q, %d) = %q, want %q", tc.file, tc.line, got, tc.want)
		}
	}
}
