// Command peers-go is the Go peer of spool's side-by-side benchmarks
// (benches/peers/main.rs builds it with `go build` and runs it once per
// sample). Goroutines written as Go programmers write them: `go`,
// sync.WaitGroup, runtime.Gosched, a channel receive to park.
//
// Usage: peers-go <scenario> <count>. It prints "<metric> <value>" lines,
// "error <message>" when it cannot do the work, "unsupported <message>"
// for a scenario it does not have, or "n/a <reason>" for one needing a
// primitive Go lacks (an unbounded channel). The servers of the network scenarios
// (echo_server, http_server) print "listening <addr>" and serve until
// killed, one goroutine per connection, as net/http's users would write a
// server by hand.
package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Spawned and then joined per batch in spawn_join; as in the Rust peers.
const batch = 1000

// Batches run before timing in spawn_join.
const warmupBatches = 20

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: peers-go <scenario> <count>")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "peers-go: count %q is not a number\n", os.Args[2])
		os.Exit(2)
	}
	switch os.Args[1] {
	case "yield_switch":
		runtime.GOMAXPROCS(1)
		fmt.Printf("ns_per_switch %g\n", yieldSwitch(n))
	case "timeout_recv":
		runtime.GOMAXPROCS(1)
		timed, plain := timeoutRecv(n/10)
		timed, plain = timeoutRecv(n)
		fmt.Printf("ns_per_timeout_recv %g\nns_per_recv %g\n", timed, plain)
	case "spawn_join":
		runtime.GOMAXPROCS(2)
		fmt.Printf("ns_per_thread %g\n", spawnJoin(n))
		fmt.Printf("peak_rss_mib %g\n", statusKiB("VmHWM")/1024)
	case "idle_memory":
		runtime.GOMAXPROCS(2)
		fmt.Printf("kib_per_thread %g\n", idleMemory(n))
	case "echo_server":
		runtime.GOMAXPROCS(2)
		serve(echo)
	case "http_server":
		runtime.GOMAXPROCS(2)
		serve(hello)
	case "chan_pingpong":
		runtime.GOMAXPROCS(2)
		sized("ns_per_round_trip", n, pingpong)
	case "main_pingpong":
		fmt.Println("n/a Go's main is a goroutine (no OS-thread main to hand off with)")
	case "mutex_contended":
		runtime.GOMAXPROCS(2)
		sized("ns_per_increment", n, mutexContended)
	default:
		shape, capacity, ok := parseMatrix(os.Args[1])
		switch {
		case !ok:
			fmt.Printf("unsupported go has no %s scenario yet\n", os.Args[1])
		case capacity < 0:
			fmt.Println("n/a Go has no unbounded channel (a chan's buffer is fixed at make)")
		default:
			runtime.GOMAXPROCS(2)
			sized("ns_per_msg", n, func(n int) time.Duration { return matrix(shape, capacity, n) })
		}
	}
}

// statusKiB reads a "kB" field of /proc/self/status (VmRSS, VmHWM).
func statusKiB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				panic(err)
			}
			return v
		}
	}
	panic("no " + field + " in /proc/self/status")
}

// yieldSwitch: two goroutines on one P each call runtime.Gosched n times;
// ns per switch, from when both are ready to when both are done.
// timeoutRecv: a goroutine sends itself n messages on a chan of capacity 1
// and receives each at once, with a 10 s context.WithTimeout around the
// receive (Go's idiom for a timeout around a blocking call) and without; ns
// per operation of each.
func timeoutRecv(n int) (float64, float64) {
	ch := make(chan int, 1)
	start := time.Now()
	for i := 0; i < n; i++ {
		ch <- i
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		select {
		case v := <-ch:
			recvSink += v
		case <-ctx.Done():
			panic("timed out")
		}
		cancel()
	}
	timed := float64(time.Since(start).Nanoseconds()) / float64(n)
	start = time.Now()
	for i := 0; i < n; i++ {
		ch <- i
		recvSink += <-ch
	}
	plain := float64(time.Since(start).Nanoseconds()) / float64(n)
	return timed, plain
}

// recvSink keeps received values alive.
var recvSink int

func yieldSwitch(n int) float64 {
	var ready int32
	var wg sync.WaitGroup
	var starts, ends [2]time.Time
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			atomic.AddInt32(&ready, 1)
			for atomic.LoadInt32(&ready) < 2 {
				runtime.Gosched()
			}
			starts[g] = time.Now()
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			ends[g] = time.Now()
		}(g)
	}
	wg.Wait()
	start, end := starts[0], ends[0]
	if starts[1].Before(start) {
		start = starts[1]
	}
	if ends[1].After(end) {
		end = ends[1]
	}
	return float64(end.Sub(start).Nanoseconds()) / float64(2*n)
}

// sink keeps the goroutines' results observable, like Rust's black_box.
var sink int64

// spawnBatch starts batch goroutines that each store a result, and waits
// for them all: Go's join is a WaitGroup.
func spawnBatch(results []int) {
	var wg sync.WaitGroup
	wg.Add(batch)
	for i := 0; i < batch; i++ {
		go func(i int) {
			results[i] = 1
			wg.Done()
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	atomic.AddInt64(&sink, int64(sum))
}

// spawnJoin: a goroutine starts and waits for n goroutines in batches;
// ns per goroutine, after warm-up batches.
func spawnJoin(n int) float64 {
	done := make(chan float64)
	go func() {
		results := make([]int, batch)
		for b := 0; b < warmupBatches; b++ {
			spawnBatch(results)
		}
		start := time.Now()
		for b := 0; b < n/batch; b++ {
			spawnBatch(results)
		}
		done <- float64(time.Since(start).Nanoseconds()) / float64(n)
	}()
	return <-done
}

// idleMemory: n goroutines each block receiving from a channel that is
// closed to release them; KiB of VmRSS per parked goroutine.
func idleMemory(n int) float64 {
	var parked int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	before := statusKiB("VmRSS")
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			atomic.AddInt64(&parked, 1)
			<-release
		}()
	}
	for atomic.LoadInt64(&parked) < int64(n) {
		runtime.Gosched()
	}
	after := statusKiB("VmRSS")
	close(release)
	wg.Wait()
	return (after - before) / float64(n)
}

// bufSize is what each connection reads at a time; as in the Rust peers
// (benches/peers/wire.rs).
const bufSize = 4096

// response answers every HTTP request; keep-alive is HTTP/1.1's default.
var response = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")

// serve accepts loopback connections and runs handle on each in its own
// goroutine (Go's TCP connections have TCP_NODELAY set by default). Go
// raises the open-file soft limit to the hard limit by itself.
func serve(handle func(net.Conn)) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Printf("error listen: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "accept: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go handle(conn)
	}
}

// echo writes back what it reads until the client closes.
func echo(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			return
		}
	}
}

// hello answers every request head (up to a blank line) it reads.
func hello(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, bufSize)
	filled := 0
	var out []byte
	for {
		n, err := conn.Read(buf[filled:])
		if err != nil {
			return
		}
		filled += n
		used := 0
		for {
			end := bytes.Index(buf[used:filled], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			used += end + 4
			out = append(out, response...)
		}
		if used == 0 && filled == len(buf) {
			return // a request head larger than the buffer
		}
		filled = copy(buf, buf[used:filled])
		if len(out) > 0 {
			if _, err := conn.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// The sync scenarios, as in benches/peers/syncwork.rs: the same shapes,
// capacities, thread counts and sizing rule.

// threads per side in the many-goroutine shapes, and the goroutines of
// mutex_contended.
const threads = 4

// capN is the matrix's bounded(N).
const capN = 1024

// step: message counts are multiples of it.
const step = threads * capN

// budgetNsPerOp: a sample aims to take at most this long per operation of
// its count; a slower system times fewer operations.
const budgetNsPerOp = 300.0

// sized warms up with about 1/64 of max operations, times max or fewer (see
// budgetNsPerOp), and prints ns per operation and the operations timed.
func sized(metric string, max int, measure func(n int) time.Duration) {
	w := max / 64 / step
	if w < 1 {
		w = 1
	}
	w *= step
	perOp := float64(measure(w).Nanoseconds()) / float64(w)
	if perOp < 1e-3 {
		perOp = 1e-3
	}
	fit := int(float64(max) * budgetNsPerOp / perOp)
	if fit > max {
		fit = max
	}
	n := fit / step
	if n < 1 {
		n = 1
	}
	n *= step
	elapsed := measure(n)
	fmt.Printf("%s %g\n", metric, float64(elapsed.Nanoseconds())/float64(n))
	fmt.Printf("ops %d\n", n)
}

// parseMatrix reads chan_<cap>_<shape>; capacity is -1 for unbounded.
func parseMatrix(name string) (shape string, capacity int, ok bool) {
	rest := strings.TrimPrefix(name, "chan_")
	if rest == name {
		return "", 0, false
	}
	i := strings.Index(rest, "_")
	if i < 0 {
		return "", 0, false
	}
	c, shape := rest[:i], rest[i+1:]
	switch shape {
	case "seq", "spsc", "mpsc", "mpmc", "select_rx", "select_both":
	default:
		return "", 0, false
	}
	if c == "unbounded" {
		return shape, -1, true
	}
	if !strings.HasPrefix(c, "bounded") {
		return "", 0, false
	}
	capacity, err := strconv.Atoi(strings.TrimPrefix(c, "bounded"))
	return shape, capacity, err == nil
}

// pingpong: n round trips between two goroutines over two unbuffered
// channels, after 100 untimed ones.
func pingpong(n int) time.Duration {
	c1, c2 := make(chan int), make(chan int)
	done := make(chan struct{})
	go func() {
		for v := range c1 {
			c2 <- v + 1
		}
		close(done)
	}()
	for i := 0; i < 100; i++ {
		c1 <- i
		<-c2
	}
	start := time.Now()
	v := 0
	for i := 0; i < n; i++ {
		c1 <- v
		v = <-c2
	}
	elapsed := time.Since(start)
	close(c1)
	<-done
	return elapsed
}

// matrix: n messages through one cell of the channel matrix with make(chan
// int, capacity); the time from before the goroutines start to after all
// are done.
func matrix(shape string, capacity, n int) time.Duration {
	var wg sync.WaitGroup
	// producer sends per messages on c in a goroutine of its own.
	producer := func(c chan int, per int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				c <- i
			}
		}()
	}
	c := make(chan int, capacity)
	start := time.Now()
	switch shape {
	case "seq":
		batch := capacity
		if batch < 1 {
			batch = 1
		}
		for sent := 0; sent < n; {
			k := batch
			if n-sent < k {
				k = n - sent
			}
			for i := 0; i < k; i++ {
				c <- sent + i
			}
			for i := 0; i < k; i++ {
				<-c
			}
			sent += k
		}
	case "spsc":
		producer(c, n)
		for i := 0; i < n; i++ {
			<-c
		}
	case "mpsc":
		for t := 0; t < threads; t++ {
			producer(c, n/threads)
		}
		for i := 0; i < n/threads*threads; i++ {
			<-c
		}
	case "mpmc":
		for t := 0; t < threads; t++ {
			producer(c, n/threads)
		}
		for t := 0; t < threads; t++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n/threads; i++ {
					<-c
				}
			}()
		}
	case "select_rx":
		cs := channels(capacity)
		for _, c := range cs {
			producer(c, n/threads)
		}
		for i := 0; i < n/threads*threads; i++ {
			select {
			case <-cs[0]:
			case <-cs[1]:
			case <-cs[2]:
			case <-cs[3]:
			}
		}
	case "select_both":
		cs := channels(capacity)
		for t := 0; t < threads; t++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for i := 0; i < n/threads; i++ {
					select {
					case cs[0] <- i:
					case cs[1] <- i:
					case cs[2] <- i:
					case cs[3] <- i:
					}
				}
			}()
			go func() {
				defer wg.Done()
				for i := 0; i < n/threads; i++ {
					select {
					case <-cs[0]:
					case <-cs[1]:
					case <-cs[2]:
					case <-cs[3]:
					}
				}
			}()
		}
	}
	wg.Wait()
	return time.Since(start)
}

// channels makes the threads (4) channels of the select shapes.
func channels(capacity int) [threads]chan int {
	var cs [threads]chan int
	for i := range cs {
		cs[i] = make(chan int, capacity)
	}
	return cs
}

// mutexContended: threads goroutines each lock a shared sync.Mutex and
// increment a counter n/threads times; the time taken.
func mutexContended(n int) time.Duration {
	var mu sync.Mutex
	counter := 0
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(threads)
	for t := 0; t < threads; t++ {
		go func() {
			defer wg.Done()
			for i := 0; i < n/threads; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if counter != n/threads*threads {
		fmt.Printf("error mutex_contended: counted %d, expected %d\n", counter, n/threads*threads)
		os.Exit(1)
	}
	return elapsed
}
