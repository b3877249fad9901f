// Package handlers holds the built-in pipeline handlers: logger, usage,
// notabene and atompub. pipeline.NewRegistry registers them. The core.X
// types named here are the pipeline.X types (pipeline declares them as
// aliases).
package handlers

import "github.com/winchester-go/winchester/pipeline/internal/core"

// Builtin describes one built-in handler type.
type Builtin struct {
	Name    string
	Aliases []string // accepted alternative names (the original class paths)
	Factory core.Factory
	// Close releases resources shared by the handlers of the factory (nil
	// when there are none).
	Close func() error
}

// Builtins returns the built-in handler types. Each call returns new
// factories with their own caches (tokens, connections).
func Builtins() []Builtin {
	atom := NewAtomPubFactory(AtomPubFactoryConfig{})
	nb := NewNotabeneFactory(NotabeneFactoryConfig{})
	return []Builtin{
		{Name: "logger", Aliases: []string{"winchester.pipeline_handler:LoggingHandler"}, Factory: NewLogger},
		{Name: "usage", Aliases: []string{"winchester.pipeline_handler:UsageHandler"}, Factory: NewUsage},
		{Name: "notabene", Aliases: []string{"winchester.pipeline_handler:NotabeneHandler"}, Factory: nb.New, Close: nb.Close},
		{Name: "atompub", Aliases: []string{"winchester.pipeline_handler:AtomPubHandler"}, Factory: atom.New},
	}
}
