// Peer benchmark: golang.org/x/time/rate, the limiter Go services use in process.
// Measures ns per Allow() for one hot key (mostly denied at 1,000,000/s, and an
// allow-heavy one at 10^9/s) and for a prebuilt read-only map of 100k limiters
// (lookup by string key + Allow), with 1 and 2 goroutines, at the rate bench_core
// uses (burst 1,000,000); each case also with the time passed in (AllowN(now, 1),
// peer "go_passed"). The heap is collected before every case, so no case pays for
// another's garbage. Each result is one JSON object per line: wall time divided by
// the total number of calls across goroutines (Google Benchmark's real_time
// convention) and the share admitted; a 2-goroutine case adds how far apart its two
// cores were (round_trip_ns, before and after it: see roundTrip).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

type result struct {
	Peer     string  `json:"peer"`
	Case     string  `json:"case"`
	Threads  int     `json:"threads"`
	NsPerOp  float64 `json:"ns_per_op"`
	Ops      int64   `json:"ops"`
	Allowed  int64   `json:"allowed"`
	Duration float64 `json:"seconds"`
	// 2 goroutines: the cores' round trip (ns) just before and just after the case.
	RoundTrip []float64 `json:"round_trip_ns,omitempty"`
}

// roundTrip measures how far apart two busy goroutines' cores are: the ns for a cache
// line to go from one to the other and back, the median of 5 batches of 400
// hand-overs (as bench_core's core_distance does). A VM's host may place its vCPUs
// near each other or far apart and move them within seconds; a 2-goroutine case's
// time follows that.
func roundTrip() float64 {
	const batches, handOvers = 5, 400
	var baton int64 // odd: the first goroutine's turn is done; even: the second's
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for k := int64(0); k < batches*handOvers; k++ {
			for atomic.LoadInt64(&baton) != 2*k+1 {
			}
			atomic.StoreInt64(&baton, 2*k+2)
		}
		close(done)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	means := make([]float64, batches)
	for b := int64(0); b < batches; b++ {
		start := time.Now()
		for k := b * handOvers; k < (b+1)*handOvers; k++ {
			atomic.StoreInt64(&baton, 2*k+1)
			for atomic.LoadInt64(&baton) != 2*k+2 {
			}
		}
		means[b] = float64(time.Since(start).Nanoseconds()) / handOvers
	}
	<-done
	sort.Float64s(means)
	return means[batches/2]
}

func keyName(i int) string {
	return fmt.Sprintf("ip:10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
}

// run calls body(worker, n) in batches on `threads` goroutines until `seconds`
// have passed; returns total calls, admitted calls and wall time.
func run(threads int, seconds float64, body func(worker int, n int) int64) (int64, int64, time.Duration) {
	const batch = 4096
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ops, allowed int64
	deadline := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	start := time.Now()
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var myOps, myAllowed int64
			for time.Now().Before(deadline) {
				myAllowed += body(w, batch)
				myOps += batch
			}
			mu.Lock()
			ops += myOps
			allowed += myAllowed
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return ops, allowed, time.Since(start)
}

func main() {
	seconds := flag.Float64("seconds", 1.0, "measured seconds per case")
	warmup := flag.Float64("warmup", 0.3, "warm-up seconds per case")
	keys := flag.Int("keys", 100000, "number of keys in the map case")
	perSecond := flag.Float64("rate", 1e6, "events per second each limiter allows")
	burst := flag.Int("burst", 1000000, "bucket size of each limiter")
	flag.Parse()
	if *seconds <= 0 || *keys <= 0 || *warmup < 0 || *perSecond <= 0 || *burst <= 0 {
		fmt.Fprintln(os.Stderr, "go-peer: -seconds, -keys, -rate and -burst must be positive")
		os.Exit(2)
	}
	newLimiter := func() *rate.Limiter { return rate.NewLimiter(rate.Limit(*perSecond), *burst) }

	// Time passed in: each goroutine keeps its own clock, 50 ns per call (as bench_core).
	clocks := make([]time.Time, 2*8) // padded, one per goroutine
	for w := 0; w < 2; w++ {
		clocks[w*8] = time.Now()
	}
	tick := func(w int) time.Time {
		clocks[w*8] = clocks[w*8].Add(50 * time.Nanosecond)
		return clocks[w*8]
	}

	oneKey := func(l *rate.Limiter, passed bool) func(int, int) int64 {
		return func(w int, n int) int64 {
			var ok int64
			for i := 0; i < n; i++ {
				var allowed bool
				if passed {
					allowed = l.AllowN(tick(w), 1)
				} else {
					allowed = l.Allow()
				}
				if allowed {
					ok++
				}
			}
			return ok
		}
	}
	hot := newLimiter()
	hotAllow := rate.NewLimiter(rate.Limit(1e9), *burst)

	names := make([]string, *keys)
	limiters := make(map[string]*rate.Limiter, *keys)
	for i := range names {
		names[i] = keyName(i)
		limiters[names[i]] = newLimiter()
	}
	// Each goroutine walks its own random permutation of the keys.
	orders := make([][]string, 2)
	for w := range orders {
		r := rand.New(rand.NewSource(int64(42 + w)))
		orders[w] = make([]string, *keys)
		for i, p := range r.Perm(*keys) {
			orders[w][i] = names[p]
		}
	}
	pos := make([]int, 2*16) // one padded cursor per goroutine
	many := func(passed bool) func(int, int) int64 {
		return func(w int, n int) int64 {
			var ok int64
			order := orders[w]
			p := pos[w*16]
			for i := 0; i < n; i++ {
				var allowed bool
				if passed {
					allowed = limiters[order[p]].AllowN(tick(w), 1)
				} else {
					allowed = limiters[order[p]].Allow()
				}
				if allowed {
					ok++
				}
				p++
				if p == len(order) {
					p = 0
				}
			}
			pos[w*16] = p
			return ok
		}
	}

	enc := json.NewEncoder(os.Stdout)
	for _, c := range []struct {
		name   string
		passed bool
		body   func(int, int) int64
	}{
		{"single_key", false, oneKey(hot, false)},
		{"single_key", true, oneKey(hot, true)},
		{"single_key_allow", false, oneKey(hotAllow, false)},
		{"single_key_allow", true, oneKey(hotAllow, true)},
		{"keys_100k", false, many(false)},
		{"keys_100k", true, many(true)},
	} {
		peer := "go"
		if c.passed {
			peer = "go_passed"
		}
		for _, threads := range []int{1, 2} {
			runtime.GC() // this case pays for no garbage of the previous one
			run(threads, *warmup, c.body)
			runtime.GC()
			var trips []float64
			if threads == 2 {
				trips = append(trips, roundTrip())
			}
			ops, allowed, wall := run(threads, *seconds, c.body)
			if threads == 2 {
				trips = append(trips, roundTrip())
			}
			_ = enc.Encode(result{
				Peer: peer, Case: c.name, Threads: threads,
				NsPerOp: float64(wall.Nanoseconds()) / float64(ops),
				Ops:     ops, Allowed: allowed, Duration: wall.Seconds(),
				RoundTrip: trips,
			})
		}
	}
}
