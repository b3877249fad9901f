package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sample is one line of the Prometheus text format: a series and its value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is every sample of one GET /metrics, with the time it was read.
type scrape struct {
	at      time.Time
	samples []sample
}

// fetchMetrics reads url (a /metrics endpoint) and parses it.
func fetchMetrics(ctx context.Context, client *http.Client, url string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("scrape %s: status %s", url, resp.Status)
	}
	s, err := parseMetrics(resp.Body)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape %s: %w", url, err)
	}
	s.at = time.Now()
	return s, nil
}

// parseMetrics parses the Prometheus text exposition format: comment lines
// are skipped, every other line is `name{label="value",…} value
// [timestamp]`.
func parseMetrics(r io.Reader) (scrape, error) {
	var s scrape
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		smp, err := parseSample(line)
		if err != nil {
			return scrape{}, fmt.Errorf("line %d: %w", n, err)
		}
		s.samples = append(s.samples, smp)
	}
	if err := sc.Err(); err != nil {
		return scrape{}, fmt.Errorf("read metrics: %w", err)
	}
	return s, nil
}

func parseSample(line string) (sample, error) {
	smp := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return sample{}, fmt.Errorf("no value in %q", line)
	}
	smp.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return sample{}, fmt.Errorf("bad labels in %q", line)
			}
			name := strings.TrimSpace(rest[:eq])
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest = rest[j+1:]
					closed = true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return sample{}, fmt.Errorf("unterminated label value in %q", line)
			}
			smp.labels[name] = val.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return sample{}, fmt.Errorf("no value in %q", line)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return sample{}, fmt.Errorf("bad value in %q: %w", line, err)
	}
	smp.value = v
	return smp, nil
}

// sum adds the values of the series named name whose labels include every
// label of match.
func (s scrape) sum(name string, match map[string]string) float64 {
	var total float64
	for _, smp := range s.samples {
		if smp.name == name && matches(smp.labels, match) {
			total += smp.value
		}
	}
	return total
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// bucket is one cumulative histogram bucket: the observations ≤ le.
type bucket struct {
	le    float64
	count float64
}

// histogram returns the cumulative buckets of the histogram name (its
// _bucket series), summed over the series whose labels include match, in
// increasing le, +Inf last.
func (s scrape) histogram(name string, match map[string]string) []bucket {
	byLE := map[float64]float64{}
	for _, smp := range s.samples {
		if smp.name != name+"_bucket" || !matches(smp.labels, match) {
			continue
		}
		le, err := strconv.ParseFloat(smp.labels["le"], 64)
		if err != nil {
			continue
		}
		byLE[le] += smp.value
	}
	out := make([]bucket, 0, len(byLE))
	for le, c := range byLE {
		out = append(out, bucket{le: le, count: c})
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmpFloat(a.le, b.le) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// delta returns the observations of later that were not in earlier,
// bucket by bucket (both cumulative, with the same bounds; a bound missing
// from earlier counts as zero there).
func delta(earlier, later []bucket) []bucket {
	before := map[float64]float64{}
	for _, b := range earlier {
		before[b.le] = b.count
	}
	out := make([]bucket, len(later))
	for i, b := range later {
		out[i] = bucket{le: b.le, count: max(0, b.count-before[b.le])}
	}
	return out
}

// quantile estimates quantile q (0 < q < 1) of the observations counted in
// the cumulative buckets bs as PromQL's histogram_quantile does: find the
// bucket holding rank q×total and interpolate linearly between its lower
// and upper bound (the first bucket's lower bound is 0). If the rank falls
// in the +Inf bucket the result is the largest finite bound. It also
// returns the bounds (lo, hi] of that bucket, which are certain where the
// interpolation is an estimate. With no observations all three are NaN.
func quantile(q float64, bs []bucket) (est, lo, hi float64) {
	nan := math.NaN()
	if len(bs) == 0 {
		return nan, nan, nan
	}
	total := bs[len(bs)-1].count
	if total == 0 {
		return nan, nan, nan
	}
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank && b.count > prevCount {
			if math.IsInf(b.le, 1) {
				return prevLE, prevLE, b.le
			}
			return prevLE + (b.le-prevLE)*(rank-prevCount)/(b.count-prevCount), prevLE, b.le
		}
		prevLE, prevCount = b.le, b.count
	}
	return prevLE, prevLE, math.Inf(1)
}

// fraction returns the share of the observations of bs that are ≤ le, or
// NaN without observations; le must be one of the bucket bounds.
func fraction(le float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return math.NaN()
	}
	for _, b := range bs {
		if b.le == le {
			return b.count / bs[len(bs)-1].count
		}
	}
	return math.NaN()
}

// observations returns the number of observations of cumulative buckets bs.
func observations(bs []bucket) float64 {
	if len(bs) == 0 {
		return 0
	}
	return bs[len(bs)-1].count
}
