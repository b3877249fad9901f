// Package distiller turns nested JSON notifications (OpenStack's nova,
// glance, neutron... and anything shaped like them) into flat events, as
// StackDistiller does, driven by an event_definitions.yaml file that
// existing installations use unchanged.
//
// A definitions file is a list of definitions, each with event_type
// patterns and traits:
//
//	# event_definitions.yaml
//	- event_type: [compute.instance.*, "!compute.instance.exists"]
//	  traits:
//	    instance_id:
//	      fields: payload.instance_id      # a path or a list of paths
//	    memory_mb:
//	      type: int                        # text (default), int, float, datetime
//	      fields: payload.memory_mb
//	    host:
//	      fields: publisher_id
//	      plugin: {name: split, parameters: {segment: 1, max_split: 1}}
//
// LoadDefinitions (or ParseDefinitions) compiles every path and plugin and
// reports every problem with file, line, definition and trait; New (or
// Load) builds a Distiller. Distill and DistillMap then convert one
// notification: the last matching definition wins, each trait takes the
// first non-null match of its paths (or its plugin's result over all of
// them) converted to its type, and the envelope (message_id, event_type,
// timestamp) comes from the notification. A value that does not convert
// costs only its trait (reported in Result.Failed); a notification that
// cannot become an event is reported as a *DropError with a Reason.
//
// Paths follow the jsonpath-rw dialect (see Path). Trait plugins are
// functions built by name from a PluginRegistry; split and bitfield are
// built in.
package distiller
