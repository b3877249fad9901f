package cli

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/winchester-go/winchester/metrics"
	"github.com/winchester-go/winchester/metrics/metricstest"
)

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestMetricsServer(t *testing.T) {
	met := metrics.New(metrics.Config{Version: "test"})
	var pingErr atomic.Pointer[error]
	ping := func(context.Context) error {
		if p := pingErr.Load(); p != nil {
			return *p
		}
		return nil
	}
	ms, err := ListenMetrics("127.0.0.1:0", met, ping, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ms.Run(ctx) }()
	base := "http://" + ms.Addr()

	check := func(method, path string, wantCode int, wantBody string) string {
		t.Helper()
		code, body := get(t, method, base+path)
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("%s %s = %d %q, want %d with %q", method, path, code, body, wantCode, wantBody)
		}
		return body
	}
	check("GET", "/livez", 200, `{"status":"ok"}`)
	check("GET", "/readyz", 200, `{"status":"ready"}`)
	exposition := check("GET", "/metrics", 200, `winchester_build_info{go_version=`)
	check("POST", "/metrics", 405, "")
	check("GET", "/v1/streams", 404, "")

	down := errors.New("connection refused")
	pingErr.Store(&down)
	check("GET", "/readyz", 503, `{"error":"database unreachable: connection refused"}`)
	check("GET", "/livez", 200, `{"status":"ok"}`)
	pingErr.Store(nil)
	check("GET", "/readyz", 200, `{"status":"ready"}`)

	ms.Drain()
	check("GET", "/readyz", 503, `{"error":"shutting down"}`)
	check("GET", "/livez", 200, `{"status":"ok"}`)
	check("GET", "/metrics", 200, "winchester_build_info")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if c, err := net.Dial("tcp", ms.Addr()); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Run returned", ms.Addr())
	}
	metricstest.Check(t, exposition) // last: it skips without promtool
}

func TestMetricsServerWithoutPing(t *testing.T) {
	ms, err := ListenMetrics("127.0.0.1:0", metrics.New(metrics.Config{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ms.Run(ctx) }()
	if code, body := get(t, "GET", "http://"+ms.Addr()+"/readyz"); code != 200 {
		t.Errorf("/readyz without a ping = %d %s, want 200", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenMetricsErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, addr := range []string{"127.0.0.1:notaport", busy.Addr().String()} {
		ms, err := ListenMetrics(addr, metrics.New(metrics.Config{}), nil, nil)
		if err == nil {
			ms.ln.Close()
			t.Errorf("ListenMetrics(%q) = nil error", addr)
			continue
		}
		if !strings.HasPrefix(err.Error(), "--metrics-listen: ") {
			t.Errorf("ListenMetrics(%q) = %v, want it to name --metrics-listen", addr, err)
		}
	}
}

// TestMetricsServerFailure: Run returns an error when serving fails (its
// listener closed under it) instead of hanging.
func TestMetricsServerFailure(t *testing.T) {
	ms, err := ListenMetrics("127.0.0.1:0", metrics.New(metrics.Config{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms.ln.Close()
	if err := ms.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "metrics server") {
		t.Fatalf("Run on a closed listener = %v, want a metrics server error", err)
	}
}
