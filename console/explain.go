package console

import (
	"github.com/winchester-go/winchester/explain"
	"github.com/winchester-go/winchester/stream"
	"github.com/winchester-go/winchester/trigger"
)

// explainStream explains the stream with the events the page read: each
// fire criterion with what it needs and has, the deadlines and what they
// came from, and what is left to happen.
func (c *Console) explainStream(s stream.Stream, events []stream.Event) explain.Stream {
	var def *trigger.Definition
	for _, d := range c.mgr.Definitions() {
		if d.Name == s.Name {
			def = d
		}
	}
	return explain.StreamOf(s, events, def, c.clock.Now())
}
