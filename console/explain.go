package console

import "github.com/winchester-go/winchester/stream"

// explainStream returns the stream's explanation for its page (nil: none).
func (c *Console) explainStream(_ *request, _ stream.Stream, _ []stream.Event) any { return nil }

// explainEvent returns the event's explanation for its page (nil: none).
func (c *Console) explainEvent(_ *request, _ stream.Event) any { return nil }
