package workload_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/distiller"
	"github.com/winchester-go/winchester/internal/workload"
	"github.com/winchester-go/winchester/stream"
)

const sampleDefinitions = "../../etc/event_definitions.yaml"

func loadDistiller(t *testing.T) *distiller.Distiller {
	t.Helper()
	d, err := distiller.Load(sampleDefinitions, distiller.Config{})
	if err != nil {
		t.Fatalf("load %s: %v", sampleDefinitions, err)
	}
	return d
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	d := loadDistiller(t)
	tests := []struct {
		name string
		cfg  workload.Config
	}{
		{name: "small", cfg: workload.Config{Instances: 5, Days: 2, Seed: 1}},
		{name: "medium", cfg: workload.Config{Instances: 60, Days: 5, Seed: 42}},
		{name: "start", cfg: workload.Config{Instances: 20, Days: 3, Seed: 7, Start: time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var a, b, ea, eb bytes.Buffer
			if _, err := workload.WriteNotifications(&a, tc.cfg); err != nil {
				t.Fatal(err)
			}
			if _, err := workload.WriteNotifications(&b, tc.cfg); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("WriteNotifications(%+v) differs between two runs", tc.cfg)
			}
			if _, err := workload.WriteEvents(&ea, tc.cfg, d); err != nil {
				t.Fatal(err)
			}
			if _, err := workload.WriteEvents(&eb, tc.cfg, d); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ea.Bytes(), eb.Bytes()) {
				t.Errorf("WriteEvents(%+v) differs between two runs", tc.cfg)
			}
			other := tc.cfg
			other.Seed++
			var c bytes.Buffer
			if _, err := workload.WriteNotifications(&c, other); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a.Bytes(), c.Bytes()) {
				t.Errorf("seeds %d and %d give the same output", tc.cfg.Seed, other.Seed)
			}
		})
	}
}

func TestNotificationsShape(t *testing.T) {
	t.Parallel()
	cfg := workload.Config{Instances: 200, Days: 7, Seed: 3}
	ns, err := workload.Notifications(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	types := map[string]int{}
	var prev time.Time
	for i, n := range ns {
		if seen[n.MessageID] {
			t.Fatalf("notification %d: message_id %s repeated", i, n.MessageID)
		}
		seen[n.MessageID] = true
		types[n.EventType]++
		if n.Timestamp.Before(prev) {
			t.Fatalf("notification %d (%s) at %s is before the one before it (%s)", i, n.MessageID, n.Timestamp, prev)
		}
		prev = n.Timestamp
		var body map[string]any
		if err := json.Unmarshal(n.Body, &body); err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
		for _, key := range []string{"message_id", "event_type", "timestamp", "publisher_id", "_context_request_id", "payload", "priority"} {
			if _, ok := body[key]; !ok {
				t.Fatalf("notification %d (%s): no %q", i, n.EventType, key)
			}
		}
		ts, _ := body["timestamp"].(string)
		if len(ts) != len("2014-08-11 21:31:52.653102") || ts[10] != ' ' {
			t.Errorf("notification %d: timestamp %q, want the form YYYY-MM-DD HH:MM:SS.ffffff", i, ts)
		}
		if got, want := ts, n.Timestamp.Format("2006-01-02 15:04:05.000000"); got != want {
			t.Errorf("notification %d: body timestamp %q, Timestamp field %q", i, got, want)
		}
		if pub, _ := body["publisher_id"].(string); !strings.HasPrefix(pub, "compute.host-") || !strings.HasSuffix(pub, ".example.com") {
			t.Errorf("notification %d: publisher_id %q, want compute.host-N.example.com", i, pub)
		}
	}
	// 200 instances over 7 days: every kind of notification occurs.
	for _, typ := range []string{
		"compute.instance.create.start", "compute.instance.create.end",
		"compute.instance.update",
		"compute.instance.resize.prep.start", "compute.instance.resize.prep.end",
		"compute.instance.resize.start", "compute.instance.resize.end",
		"compute.instance.finish_resize.start", "compute.instance.finish_resize.end",
		"compute.instance.rebuild.start", "compute.instance.rebuild.end",
		"compute.instance.delete.start", "compute.instance.delete.end",
		"compute.instance.exists",
	} {
		if types[typ] == 0 {
			t.Errorf("no %s notification in %+v (counts %v)", typ, cfg, types)
		}
	}
	if types["compute.instance.create.start"] != types["compute.instance.create.end"] {
		t.Errorf("%d create.start but %d create.end", types["compute.instance.create.start"], types["compute.instance.create.end"])
	}
	if types["compute.instance.delete.start"] != types["compute.instance.delete.end"] {
		t.Errorf("%d delete.start but %d delete.end", types["compute.instance.delete.start"], types["compute.instance.delete.end"])
	}
}

// TestDistill checks that every notification distills with the sample
// definitions, and the events of an instance tell a consistent story:
// exactly one exists per instance per day it existed, with that day as
// its audit period.
func TestDistill(t *testing.T) {
	t.Parallel()
	d := loadDistiller(t)
	cfg := workload.Config{Instances: 150, Days: 4, Seed: 99}
	ns, err := workload.Notifications(cfg)
	if err != nil {
		t.Fatal(err)
	}
	events, err := workload.Events(cfg, d)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(events) != len(ns) {
		t.Fatalf("%d notifications gave %d events", len(ns), len(events))
	}
	type instanceDays struct {
		created, deleted time.Time
		exists           map[time.Time]int
	}
	byInstance := map[string]*instanceDays{}
	get := func(id string) *instanceDays {
		if byInstance[id] == nil {
			byInstance[id] = &instanceDays{exists: map[time.Time]int{}}
		}
		return byInstance[id]
	}
	for i, ev := range events {
		if ev.MessageID != ns[i].MessageID || ev.Type != ns[i].EventType || !ev.Timestamp.Equal(ns[i].Timestamp) {
			t.Fatalf("event %d: %s %s %s, notification %s %s %s", i, ev.MessageID, ev.Type, ev.Timestamp, ns[i].MessageID, ns[i].EventType, ns[i].Timestamp)
		}
		for _, name := range []string{"instance_id", "tenant_id", "user_id", "host", "service", "request_id", "memory_mb", "disk_gb", "root_gb", "vcpus", "instance_type_id", "instance_type", "state", "os_distro", "os_version", "os_architecture"} {
			if _, ok := ev.Traits[name]; !ok {
				t.Fatalf("event %d (%s): no trait %q; traits %v", i, ev.Type, name, ev.TraitNames())
			}
		}
		if got := ev.Traits["service"]; !got.Equal(stream.String("compute")) {
			t.Errorf("event %d: service %v, want compute", i, got)
		}
		id := ev.Traits["instance_id"].Text()
		switch ev.Type {
		case "compute.instance.create.start":
			get(id).created = ev.Timestamp
			if _, ok := ev.Traits["launched_at"]; ok {
				t.Errorf("event %d: create.start with launched_at", i)
			}
		case "compute.instance.create.end":
			if _, ok := ev.Traits["launched_at"]; !ok {
				t.Errorf("event %d: create.end without launched_at", i)
			}
		case "compute.instance.delete.end":
			get(id).deleted = ev.Timestamp
			if _, ok := ev.Traits["deleted_at"]; !ok {
				t.Errorf("event %d: delete.end without deleted_at", i)
			}
		case "compute.instance.exists":
			begin, okb := ev.Traits["audit_period_beginning"]
			end, oke := ev.Traits["audit_period_ending"]
			if !okb || !oke || begin.Kind() != stream.KindDatetime || end.Kind() != stream.KindDatetime {
				t.Fatalf("event %d: exists without datetime audit period: %v", i, ev.Map())
			}
			b := begin.Time()
			if !b.Equal(b.Truncate(24*time.Hour)) || !end.Time().Equal(b.Add(24*time.Hour)) {
				t.Errorf("event %d: audit period %s – %s, want one whole day", i, b, end.Time())
			}
			if ev.Timestamp.Before(end.Time()) || ev.Timestamp.After(end.Time().Add(20*time.Minute)) {
				t.Errorf("event %d: exists at %s, want just after its audit period ends (%s)", i, ev.Timestamp, end.Time())
			}
			get(id).exists[b]++
		}
	}
	start, err := time.Parse(time.DateOnly, workload.DefaultStart)
	if err != nil {
		t.Fatal(err)
	}
	for id, in := range byInstance {
		for day := range cfg.Days {
			begin := start.Add(time.Duration(day) * 24 * time.Hour)
			end := begin.Add(24 * time.Hour)
			want := 1
			if !in.created.IsZero() && !in.created.Before(end) {
				want = 0 // not created yet
			}
			if !in.deleted.IsZero() && in.deleted.Before(begin) {
				want = 0 // deleted before
			}
			if got := in.exists[begin]; got != want {
				t.Errorf("instance %s (created %s, deleted %s): %d exists for %s, want %d", id, in.created, in.deleted, got, begin.Format(time.DateOnly), want)
			}
		}
	}
}

func TestSampleShape(t *testing.T) {
	t.Parallel()
	ns, err := workload.Notifications(workload.Config{Instances: 10, Days: 2, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var exists map[string]any
	for _, n := range ns {
		if n.EventType == "compute.instance.exists" {
			if err := json.Unmarshal(n.Body, &exists); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if exists == nil {
		t.Fatal("no exists notification")
	}
	payload := exists["payload"].(map[string]any)
	want := []string{
		"access_ip_v4", "access_ip_v6", "architecture", "audit_period_beginning", "audit_period_ending",
		"availability_zone", "bandwidth", "cell_name", "created_at", "deleted_at", "disk_gb", "display_name",
		"ephemeral_gb", "host", "hostname", "image_meta", "image_ref_url", "instance_flavor_id", "instance_id",
		"instance_type", "instance_type_id", "kernel_id", "launched_at", "memory_mb", "metadata", "node",
		"os_type", "progress", "ramdisk_id", "reservation_id", "root_gb", "state", "state_description",
		"tenant_id", "terminated_at", "user_id", "vcpus",
	}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(payload))); diff != "" {
		t.Errorf("exists payload keys (-want +got):\n%s", diff)
	}
	meta := payload["image_meta"].(map[string]any)
	for _, k := range []string{"org.openstack__1__architecture", "org.openstack__1__os_distro", "org.openstack__1__os_version"} {
		if _, ok := meta[k]; !ok {
			t.Errorf("image_meta has no %q", k)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  workload.Config
		want string
	}{
		{name: "no_instances", cfg: workload.Config{Days: 1}, want: "workload: instances 0 out of range [1, 10000000]"},
		{name: "no_days", cfg: workload.Config{Instances: 1}, want: "workload: days 0 out of range [1, 3660]"},
		{name: "ok", cfg: workload.Config{Instances: 1, Days: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := workload.Generate(tc.cfg, func(workload.Notification) error { return workload.ErrStop })
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Generate(%+v) = %q, want %q", tc.cfg, got, tc.want)
			}
		})
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := workload.Config{Instances: 1000, Days: 2, Seed: 1}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := workload.Generate(cfg, func(workload.Notification) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "notifications/s")
}
