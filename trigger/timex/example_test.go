package timex_test

import (
	"fmt"
	"time"

	"github.com/winchester-go/winchester/trigger/timex"
)

func Example() {
	// Parse once, evaluate many times.
	expiration := timex.MustParse("$last + 1h")
	window, err := timex.Parse("day @ 6h") // the day starting at 06:00 that contains $timestamp
	if err != nil {
		fmt.Println(err)
		return
	}

	last := time.Date(2014, 8, 1, 12, 30, 0, 0, time.UTC)
	now := time.Date(2014, 8, 1, 2, 10, 23, 0, time.UTC)

	r, _ := expiration.Eval(now, map[string]time.Time{"last": last})
	fmt.Println("expires:", r.Timestamp().Format(time.DateTime))

	w, _ := window.Eval(now, nil) // no variables: $timestamp is now
	fmt.Printf("window: [%s, %s) pinned to the %s\n", w.Begin.Format(time.DateTime), w.End.Format(time.DateTime), w.Unit)
	fmt.Println("contains 05:59:", w.Contains(time.Date(2014, 8, 1, 5, 59, 0, 0, time.UTC)))
	fmt.Println("contains 06:00:", w.Contains(time.Date(2014, 8, 1, 6, 0, 0, 0, time.UTC)))

	_, err = timex.Parse("$a.day")
	fmt.Println(err)
	// Output:
	// expires: 2014-08-01 13:30:00
	// window: [2014-07-31 06:00:00, 2014-08-01 06:00:00) pinned to the day
	// contains 05:59: true
	// contains 06:00: false
	// timex: parse "$a.day": unexpected character '.' at column 3
}

func ExampleExpr_Canonical() {
	e := timex.MustParse("(($ a + 1hr 30min 1h)) to $b")
	fmt.Println(e.Canonical())
	// Output:
	// $a + 2h 30m to $b
}
