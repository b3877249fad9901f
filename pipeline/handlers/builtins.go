// Package handlers holds the built-in pipeline handlers: logger, usage,
// notabene, atompub, webhook, exec, filter and halt. RegisterBuiltins adds
// them to a pipeline.Registry.
package handlers

import "github.com/winchester-go/winchester/pipeline"

// RegisterBuiltins registers the built-in handler types in r under their
// names, and under the class paths of the original configuration (for
// example "winchester.pipeline_handler:LoggingHandler") as aliases. The
// factories get their own caches (tokens, connections), which r.Close
// releases.
func RegisterBuiltins(r *pipeline.Registry) {
	atom := NewAtomPubFactory(AtomPubFactoryConfig{})
	nb := NewNotabeneFactory(NotabeneFactoryConfig{})
	for _, b := range []struct {
		name, alias string
		factory     pipeline.Factory
	}{
		{"logger", "winchester.pipeline_handler:LoggingHandler", NewLogger},
		{"usage", "winchester.pipeline_handler:UsageHandler", NewUsage},
		{"notabene", "winchester.pipeline_handler:NotabeneHandler", nb.New},
		{"atompub", "winchester.pipeline_handler:AtomPubHandler", atom.New},
	} {
		r.Register(b.name, b.factory)
		r.Alias(b.alias, b.name)
	}
	hook := NewWebhookFactory(WebhookFactoryConfig{})
	r.Register("webhook", hook.New)
	r.Register("exec", NewExec)
	r.Register("filter", NewFilter)
	r.Register("halt", NewHalt)
	r.OnClose(nb.Close)
}
