package prefetch

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestOrderedKeepsJobOrder(t *testing.T) {
	n := 0
	next := func() (int, bool, error) {
		if n == 50 {
			return 0, false, nil
		}
		n++
		return n, true, nil
	}
	work := func(j int) (int, error) {
		time.Sleep(time.Duration(j%3) * time.Millisecond)
		return j * j, nil
	}
	want := 1
	for f := range Ordered(context.Background(), 4, 3, next, work) {
		if f.Err != nil || f.Job != want || f.Out != want*want {
			t.Fatalf("item %+v, want job %d", f, want)
		}
		want++
	}
	if want != 51 {
		t.Errorf("%d items, want 50", want-1)
	}
}

func TestOrderedNextErrorIsLastItem(t *testing.T) {
	boom := errors.New("boom")
	k, items := 0, 0
	work := func(j int) (int, error) { return j, nil }
	for f := range Ordered(context.Background(), 2, 2, func() (int, bool, error) {
		k++
		if k == 3 {
			return 0, false, boom
		}
		return k, true, nil
	}, work) {
		items++
		if items == 3 && !errors.Is(f.Err, boom) {
			t.Errorf("third item %+v, want the error", f)
		}
	}
	if items != 3 {
		t.Errorf("%d items, want 3", items)
	}
}

func TestWorkErrorsAreDeliveredInPlace(t *testing.T) {
	bad := errors.New("bad item")
	var got []error
	for f := range overSlice(context.Background(), []int{1, 2, 3, 4}, 2, 0, func(j int) (int, error) {
		if j == 2 {
			return 0, bad
		}
		return j, nil
	}) {
		got = append(got, f.Err)
	}
	if len(got) != 4 || got[0] != nil || !errors.Is(got[1], bad) || got[2] != nil || got[3] != nil {
		t.Fatalf("errors %v, want only the second item's", got)
	}
}

func TestCancelClosesAndStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	endless := func() (int, bool, error) { return 1, true, nil }
	ch := Ordered(ctx, 2, 2, endless, func(j int) (int, error) { return j, nil })
	<-ch
	cancel()
	for range ch {
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines left running (had %d)", g, before)
	}
}

// At most ahead items are prepared beyond the one being delivered.
func TestAheadBoundsWork(t *testing.T) {
	started := make(chan int, 100)
	ch := overSlice(context.Background(), make([]int, 40), 2, 3, func(j int) (int, error) {
		started <- j
		return j, nil
	})
	<-ch // one delivered, consumer now idle
	time.Sleep(50 * time.Millisecond)
	if n := len(started); n > 1+3+1 {
		t.Fatalf("%d items prepared while the consumer held one, ahead is 3", n)
	}
	for range ch {
	}
}

// overSlice is Ordered over the items of a slice, in their order.
func overSlice[J, R any](ctx context.Context, items []J, workers, ahead int, work func(J) (R, error)) <-chan Result[J, R] {
	i := 0
	next := func() (J, bool, error) {
		if i == len(items) {
			var zero J
			return zero, false, nil
		}
		i++
		return items[i-1], true, nil
	}
	return Ordered(ctx, workers, ahead, next, work)
}
