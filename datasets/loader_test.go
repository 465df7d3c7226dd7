package datasets

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStreamOrderAndBound(t *testing.T) {
	const n = 200
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprint(i)
	}
	for _, tc := range []struct{ workers, ahead int }{{1, 1}, {4, 3}, {8, 16}, {0, 0}} {
		t.Run(fmt.Sprintf("workers=%d,ahead=%d", tc.workers, tc.ahead), func(t *testing.T) {
			var started, delivered atomic.Int64
			var maxAhead atomic.Int64
			load := func(p string) ([]float32, error) {
				s := started.Add(1)
				if d := s - delivered.Load(); d > maxAhead.Load() {
					maxAhead.Store(d)
				}
				// Finish out of order: later paths are faster.
				var i int
				fmt.Sscan(p, &i)
				time.Sleep(time.Duration((n-i)%7) * 20 * time.Microsecond)
				return []float32{float32(i)}, nil
			}
			ahead := tc.ahead
			if ahead <= 0 {
				ahead = 2 * runtime.NumCPU()
			}
			i := 0
			for it := range StreamFunc(context.Background(), paths, tc.workers, tc.ahead, load) {
				if it.Err != nil || it.Index != i || it.Path != paths[i] || it.Data[0] != float32(i) {
					t.Fatalf("item %d: %+v", i, it)
				}
				delivered.Add(1)
				i++
			}
			if i != n {
				t.Fatalf("%d items, want %d", i, n)
			}
			// Loads started but not yet delivered never exceed ahead+1 (the
			// item in hand) plus one racing start.
			if m := maxAhead.Load(); m > int64(ahead)+2 {
				t.Errorf("%d loads ran ahead of delivery, bound is %d", m, ahead)
			}
		})
	}
}

func TestStreamErrors(t *testing.T) {
	f := loadFixtures(t)
	paths := []string{testdata(f.Resize[0].Src), "testdata/does_not_exist.png", testdata(f.Decode[0].File)}
	var items []Item
	for it := range Stream(context.Background(), paths, 16, 2, 2) {
		items = append(items, it)
	}
	if len(items) != 3 {
		t.Fatalf("%d items", len(items))
	}
	for i, it := range items {
		if it.Index != i || it.Path != paths[i] {
			t.Errorf("item %d: index %d path %s", i, it.Index, it.Path)
		}
	}
	if items[0].Err != nil || len(items[0].Data) != 3*16*16 || items[2].Err != nil {
		t.Errorf("good items: %v, %v", items[0].Err, items[2].Err)
	}
	if items[1].Err == nil || items[1].Data != nil || !strings.Contains(items[1].Err.Error(), "does_not_exist.png") {
		t.Errorf("bad item: %+v", items[1])
	}
	// The data agrees with LoadImage.
	want, err := LoadImage(paths[0], 16)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if want[i] != items[0].Data[i] {
			t.Fatalf("Stream and LoadImage differ at %d", i)
		}
	}
}

func TestStreamCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	paths := make([]string, 10000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var loads atomic.Int64
	ch := StreamFunc(ctx, paths, 4, 4, func(string) ([]float32, error) {
		loads.Add(1)
		time.Sleep(100 * time.Microsecond)
		return nil, errors.New("x")
	})
	got := 0
	for range ch {
		got++
		if got == 10 {
			cancel()
		}
	}
	if got > 10+4+1 {
		t.Errorf("%d items after cancelling at 10", got)
	}
	if l := loads.Load(); l > 10+4+4+2 {
		t.Errorf("%d loads after cancelling at 10", l)
	}
	// All goroutines of the stream exit.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines left, %d before", g, before)
	}

	// A cancelled context with a consumer that never reads: nothing leaks.
	ctx2, cancel2 := context.WithCancel(context.Background())
	StreamFunc(ctx2, paths, 4, 4, func(string) ([]float32, error) { return nil, nil })
	cancel2()
	deadline = time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines left after abandoning a cancelled stream, %d before", g, before)
	}
}

func TestStreamEmpty(t *testing.T) {
	for range Stream(context.Background(), nil, 64, 0, 0) {
		t.Fatal("item from an empty list")
	}
}
