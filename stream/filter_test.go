package stream

import (
	"strings"
	"testing"
	"time"
)

func TestParseTraitFilter(t *testing.T) {
	tests := []struct {
		spec    string
		name    string
		want    Value
		wantErr string
	}{
		{spec: "host=web1", name: "host", want: String("web1")},
		{spec: "host:text=a=b", name: "host", want: String("a=b")},
		{spec: "n:int=42", name: "n", want: Int(42)},
		{spec: "f:float=1.5", name: "f", want: Float(1.5)},
		{spec: "at:datetime=2026-01-02T03:04:05Z", name: "at", want: Datetime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))},
		{spec: "host", wantErr: "want NAME[:TYPE]=VALUE"},
		{spec: "=x", wantErr: "want NAME[:TYPE]=VALUE"},
		{spec: "n:int=x", wantErr: `"x" is not an integer`},
		{spec: "f:float=x", wantErr: `"x" is not a number`},
		{spec: "at:datetime=soon", wantErr: "soon"},
		{spec: "n:bool=true", wantErr: `unknown type "bool" (string, int, float, datetime)`},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			name, v, err := ParseTraitFilter(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTraitFilter(%q) error = %v, want one with %q", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil || name != tc.name || !v.Equal(tc.want) {
				t.Errorf("ParseTraitFilter(%q) = %q, %v, %v; want %q, %v", tc.spec, name, v, err, tc.name, tc.want)
			}
		})
	}
}
