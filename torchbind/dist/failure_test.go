package dist

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/puad-go/puad/torchbind"
)

// failTimeout is the group timeout of the failure tests; margin is how much
// longer than that an error may take to come back.
const (
	failTimeout = 3 * time.Second
	margin      = 3 * time.Second
)

func init() {
	workerRoles["peer-exits"] = func(t *testing.T) { peerFailureWorker(t, false) }
	workerRoles["peer-stalls"] = func(t *testing.T) { peerFailureWorker(t, true) }
}

// TestPeerFailure: one of two ranks leaves after a first collective, by
// exiting without closing anything or by stopping to answer; the other
// rank's next collective fails within the timeout with an error that says so.
func TestPeerFailure(t *testing.T) {
	for _, role := range []string{"peer-exits", "peer-stalls"} {
		for _, victim := range []int{0, 1} {
			t.Run(role+"/rank"+strconv.Itoa(victim), func(t *testing.T) {
				ws := startWorkers(t, role, 2, "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(freePort(t)),
					"PUAD_DIST_VICTIM="+strconv.Itoa(victim))
				waitWorkers(t, ws, time.Minute)
			})
		}
	}
}

// peerFailureWorker: the victim rank leaves after one all-reduce (exiting,
// or stalling for longer than the other rank waits); the other rank checks
// the error of its next one.
func peerFailureWorker(t *testing.T, stall bool) {
	g := joinFromEnv(t, failTimeout)
	x, err := torchbind.Ones([]int64{1000}, torchbind.Float32, torchbind.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if err := g.AllReduce([]*torchbind.Tensor{x}, Sum); err != nil {
		t.Fatal(err)
	}
	if strconv.Itoa(g.Rank()) == os.Getenv("PUAD_DIST_VICTIM") {
		if stall {
			time.Sleep(failTimeout + margin) // the other rank has given up by then
		}
		os.Exit(0) // leaves the group without closing anything
	}
	start := time.Now()
	err = g.AllReduce([]*torchbind.Tensor{x}, Sum)
	took := time.Since(start)
	want := ErrPeerFailed
	if stall {
		want = ErrTimeout
	}
	if !errors.Is(err, want) {
		t.Errorf("rank %d: AllReduce after the peer left: %v, want an error wrapping %v", g.Rank(), err, want)
	}
	if took > failTimeout+margin {
		t.Errorf("rank %d: the error took %v (timeout %v)", g.Rank(), took, failTimeout)
	}
	t.Logf("rank %d: %v after %v", g.Rank(), err, took)
	closeWithin(t, g)
}

// closeWithin closes g, failing when that does not return within margin.
func closeWithin(t *testing.T, g *Group) {
	done := make(chan error, 1)
	go func() { done <- g.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(margin):
		t.Error("Close of a group whose peer failed hangs")
	}
}

// TestUnreachable: stores and groups whose peers never appear fail within
// their timeout.
func TestUnreachable(t *testing.T) {
	const timeout = 2 * time.Second
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name    string
		join    func() error
		timeout bool // the error must wrap ErrTimeout
	}{
		{"no server on the port", func() error { return tcpStore("127.0.0.1", freePort(t), false, 2, timeout) }, true},
		{"address answers but is no store", func() error { return initRank1("127.0.0.1", busyPort, timeout) }, true},
		{"unknown host", func() error { return tcpStore("no-such-host.invalid", 29500, false, 2, timeout) }, false},
		{"server port in use", func() error { return tcpStore("127.0.0.1", busyPort, true, 1, timeout) }, false},
		{"rank 0 waits for a rank that never comes", func() error { return initRank0(freePort(t), timeout) }, true},
		{"group waits for a rank that never comes", func() error { return lonelyGroup(t, timeout) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.join()
			took := time.Since(start)
			if err == nil {
				t.Fatal("succeeded")
			}
			if c.timeout && !errors.Is(err, ErrTimeout) {
				t.Errorf("%v: want an error wrapping ErrTimeout", err)
			}
			if took > timeout+margin {
				t.Errorf("took %v (timeout %v)", took, timeout)
			}
			t.Logf("%v after %v", err, took)
		})
	}
	if LiveStores() != 0 || LiveGroups() != 0 {
		t.Errorf("failed joins left %d stores and %d groups", LiveStores(), LiveGroups())
	}
}

// tcpStore opens and closes a TCPStore, returning the error of opening it.
func tcpStore(host string, port int, server bool, worldSize int, timeout time.Duration) error {
	s, err := NewTCPStore(host, port, worldSize, server, timeout)
	if err == nil {
		s.Close()
	}
	return err
}

// initRank1 is rank 1 of 2 joining through host:port.
func initRank1(host string, port int, timeout time.Duration) error {
	g, err := Init(Env{Rank: 1, WorldSize: 2, LocalRank: 1, MasterAddr: host, MasterPort: port}, Gloo, timeout)
	if err == nil {
		g.Close()
	}
	return err
}

// initRank0 is rank 0 of 2 serving the store on port; rank 1 never comes.
func initRank0(port int, timeout time.Duration) error {
	g, err := Init(Env{Rank: 0, WorldSize: 2, MasterAddr: "127.0.0.1", MasterPort: port}, Gloo, timeout)
	if err == nil {
		g.Close()
	}
	return err
}

// lonelyGroup is rank 0 of 2 on a FileStore that rank 1 never opens.
func lonelyGroup(t *testing.T, timeout time.Duration) error {
	s, err := NewFileStore(filepath.Join(t.TempDir(), "store"), 2)
	if err != nil {
		return err
	}
	defer s.Close()
	g, err := NewGroup(s, Gloo, 0, 2, timeout)
	if err == nil {
		g.Close()
	}
	return err
}
