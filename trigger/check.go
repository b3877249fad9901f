package trigger

import (
	"errors"
	"fmt"
)

// CheckPipelines reports every trigger that names a fire or expire pipeline
// for which has returns false, as *DefinitionError values joined into one
// error (nil when all pipelines exist). A trigger naming a pipeline that is
// not defined is a configuration error found at load, not when its first
// stream fires.
func CheckPipelines(defs []*Definition, has func(pipeline string) bool) error {
	var errs []error
	for _, d := range defs {
		for _, f := range []struct{ field, name string }{
			{"fire_pipeline", d.FirePipeline},
			{"expire_pipeline", d.ExpirePipeline},
		} {
			if f.name != "" && !has(f.name) {
				errs = append(errs, &DefinitionError{
					File: d.File, Line: d.Line, Trigger: d.Name, Field: f.field,
					Err: fmt.Errorf("unknown pipeline %q (not defined in the pipelines file)", f.name),
				})
			}
		}
	}
	return errors.Join(errs...)
}
