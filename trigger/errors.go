package trigger

import (
	"fmt"
	"strings"

	"github.com/winchester-go/winchester/internal/yamlfile"
)

// DefinitionError is a problem in a trigger definition found at load time.
// File and Line locate it (Line is 0 when the position is unknown), Trigger
// is the trigger's name when known, Field the path of the offending field
// ("match_criteria[0].traits.memory_mb"; "" for the whole definition). Err
// says what is wrong; for an expression that does not parse it wraps the
// *timex.SyntaxError.
type DefinitionError struct {
	File    string
	Line    int
	Trigger string
	Field   string
	Err     error
}

// Error returns "file:line: trigger "name": field: problem", leaving out the
// parts that are not known.
func (e *DefinitionError) Error() string {
	var b strings.Builder
	b.WriteString(yamlfile.Where(e.File, e.Line))
	if e.Trigger != "" {
		fmt.Fprintf(&b, "trigger %q: ", e.Trigger)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid definition")
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *DefinitionError) Unwrap() error { return e.Err }

// Warning is a problem in a definition that does not prevent loading it
// (a deprecated spelling, a setting without effect). Loading returns
// warnings to the caller, who logs them.
type Warning struct {
	File    string
	Line    int
	Trigger string
	Field   string
	Msg     string
}

// String renders the warning like a DefinitionError.
func (w Warning) String() string {
	return (&DefinitionError{File: w.File, Line: w.Line, Trigger: w.Trigger, Field: w.Field, Err: warningText(w.Msg)}).Error()
}

type warningText string

func (w warningText) Error() string { return string(w) }
